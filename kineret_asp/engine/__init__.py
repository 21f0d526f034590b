"""Running the KB on cases: the programs derived from it, the chunk engine, the warm one-case engine."""
