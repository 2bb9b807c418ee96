"""Fault tests: a package, so the stack fixture in conftest.py is package-scoped (started once for
these tests, stopped right after them, never shared with the session's e2e stack)."""
