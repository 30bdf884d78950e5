"""gogs-scim test suite."""
