"""clingo underneath: the one Control factory, symbols to values, facts through the backend, strict fact files."""
