"""The demo: a bundled agent under ``tf run`` against a local fake GitHub API (``python -m trustfence.demo``).

``upstream`` (the fake HTTPS API with its own test CA, in a namespace of its own) is shared with the tests.
"""

from __future__ import annotations

__all__: list[str] = []
