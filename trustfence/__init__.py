"""TrustFence: a host firewall for AI agents.

The product folders (agent/, proxy/, connectors/, ...) are mapped into this package by pyproject.toml.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
