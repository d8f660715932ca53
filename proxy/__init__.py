"""The enforcer: mitmproxy addons in a fixed order, embedded in the daemon's event loop."""

from __future__ import annotations

from trustfence.proxy.master import Enforcer, enforcer_addons
from trustfence.proxy.state import EnforcerState, Gateway

__all__ = ["Enforcer", "EnforcerState", "Gateway", "enforcer_addons"]
