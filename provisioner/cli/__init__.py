"""The `provisioner` command: one module per command, and the outputs around a run."""

from provisioner.cli.main import main

__all__ = ["main"]
