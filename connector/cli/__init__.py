"""The `connector` command line: parse arguments, call the app, print. Nothing else."""

from connector.cli.main import main

__all__ = ["main"]
