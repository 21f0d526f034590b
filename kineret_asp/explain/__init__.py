"""Explaining a decision: what-if, what is missing, and the reviewer's page."""
