"""The policy author's loop: check, test, verify, diff, trace, schemas, new versions, the language server."""
