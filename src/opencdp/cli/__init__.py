"""The `opencdp` command for operators."""

from __future__ import annotations

from opencdp.cli.main import app


def main() -> None:
    app()
