"""The ``tf`` command line (see ``main``)."""

from trustfence.agent.cli.main import app, main

__all__ = ["app", "main"]
