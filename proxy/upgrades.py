"""Upgrades: only WebSocket upgrades, and after a 101 only WebSocket frames, never raw bytes.

An upstream that answers ``101 Switching Protocols`` to ``Upgrade: h2c`` (or to any protocol of the agent's
choosing) would turn the connection into a byte pipe the enforcer can no longer read: every request after it
would reach the upstream undecided and unrecorded. So:

- a request naming any ``Upgrade`` but exactly ``websocket`` on an HTTP/1.1 ``GET`` is refused (400, with a
  row) before anything is sent; so is an ``HTTP2-Settings`` header (the h2c handshake). HTTP/2's extended
  CONNECT (``:protocol``) never gets this far: the enforcer does not announce it, and mitmproxy refuses the
  stream.
- a WebSocket upgrade goes on to Classify like any request: it is ``<connector>.websocket.open`` *and* the
  route's own action, or the action of a route the connector marks as a WebSocket endpoint (see
  ``connectors.protocols``), so it passes only where that is allowed.
- a 101 that mitmproxy will not relay as WebSocket frames (the upstream switched to something else, or the
  handshake lacks what mitmproxy needs to speak WebSocket) is killed in the response hook: mitmproxy checks for
  a kill right after that hook and before it would swap in a raw TCP relay, so the agent's connection is closed,
  nothing is relayed, and the row says why (``killed``). mitmproxy's ``rawtcp`` stays on only because its
  protocol detection needs it to hand non-HTTP connections to CloseNonHttp, which closes them.

Live WebSockets stay in KillSwitch's table until they end, so a kill switch closes them.
"""

from __future__ import annotations

from mitmproxy import http

from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import record_of

__all__ = ["Upgrades", "upgrade_problem"]


def upgrade_problem(method: str, http_version: str, upgrade: str | None, http2_settings: bool) -> str | None:
    """Why a request's upgrade is refused; None when it names none, or exactly a WebSocket upgrade."""
    if http2_settings:
        return "an HTTP2-Settings header (an h2c upgrade) is refused: only WebSocket upgrades are relayed"
    if upgrade is None:
        return None
    tokens = [t.strip().lower() for t in upgrade.split(",") if t.strip()]
    if tokens != ["websocket"]:
        return f"Upgrade: {upgrade[:60]} is refused: only WebSocket upgrades are relayed"
    if method != "GET" or http_version != "HTTP/1.1":
        return f"a WebSocket upgrade must be an HTTP/1.1 GET, not {method} over {http_version}"
    return None


class Upgrades:
    """Refuse every upgrade but WebSocket before it is sent; kill any 101 that is not relayed as WebSocket."""

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        upgrades = req.headers.get_all("upgrade")
        problem = upgrade_problem(req.method, req.http_version, ", ".join(upgrades) if upgrades else None,
                                  "http2-settings" in req.headers)
        if problem is not None:
            deny(flow, problem, status=400)

    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or resp.status_code != 101 or flow.websocket is not None:
            return
        reason = (f"the upstream switched protocols to {resp.headers.get('upgrade', '?')[:60]!r}: only WebSocket "
                  "frames are relayed, so the connection was closed")
        rec = record_of(flow)
        rec.killed = rec.reason = reason
        flow.kill()  # type: ignore[no-untyped-call]
