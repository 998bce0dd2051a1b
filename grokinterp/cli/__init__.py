"""The `grokinterp` command: `main` parses the command line, one module per command."""

from grokinterp.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
