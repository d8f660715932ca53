"""The dashboard: the operator's web window onto traffic, approvals, gateways, the kill switch and the audit
log, with local accounts and roles. Served by the daemon itself (uvicorn on the daemon's loop) on a loopback
address; every change goes through the daemon's own operation handlers."""

from __future__ import annotations

from trustfence.dashboard.server import Dashboard

__all__ = ["Dashboard"]
