"""The decision on a case, as a value and in the KB's words."""
