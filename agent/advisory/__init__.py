"""Advisory mode: agents that ask before they act, over the v1 API the dashboard's server carries.

- ``keys``: registered agents and their hashed API keys (``tf agents register|list|revoke``).
- ``spec``: the action spec an agent sends, checked, and the connector and Action it names.
- ``requests``: each request decided by the enforcer's own checks (``proxy.calls``), held for a human when asked.
- ``tokens``: the signed, short-lived decision token an allowed action gets.
- ``routes`` and ``execute``: mode A, the daemon performing the allowed request with the vault's credential.
- ``service``: the whole as the API calls it, with the per-key rate limit.
"""

from __future__ import annotations

from trustfence.agent.advisory.service import PER_MINUTE, WAIT_MAX, Advisory, ApiError

__all__ = ["PER_MINUTE", "WAIT_MAX", "Advisory", "ApiError"]
