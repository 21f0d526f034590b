"""Cases: the schema read from the KB, validation, the case value, .lp cases, changes, and which version decides."""
