"""`python -m gogs_scim` is the `gogs-scim` command."""

from gogs_scim.cli import main

main()
