"""`python -m opencdp` is the `opencdp` command."""

from opencdp.cli import main

main()
