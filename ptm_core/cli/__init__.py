"""The command line: `python -m ptm_core <command>` drives the same engine as the app, headless."""
from ptm_core.cli.commands import main

__all__ = ["main"]
