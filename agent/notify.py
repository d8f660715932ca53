"""Tell a Slack incoming webhook about each new approval, from the daemon itself (never through a sandbox).

The post runs in a thread with a short timeout; a failure is logged and changes nothing about the approval.
The message names the request and the command that answers it, never a header or a body. With ``buttons``
(``[approvals] slack_signing_secret`` set) it also carries Block Kit Approve / Deny buttons whose value is the
approval id; Slack sends a click to the dashboard's ``/slack/interactions`` (``dashboard.slack``).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trustfence.proxy.holds import Approval

__all__ = ["APPROVE", "DENY", "Notifier", "message", "post"]

APPROVE = "tf_approve"
DENY = "tf_deny"
"""The buttons' ``action_id``: what the interaction callback reads to know which was clicked."""


def message(a: Approval, buttons: bool) -> dict[str, Any]:
    """The webhook's JSON body: ``text`` always (notifications, clients without blocks), and with ``buttons``
    a section repeating it and an actions block (Approve / Deny, each carrying the approval id)."""
    text = (f"TrustFence: gateway *{a.gateway}* wants `{a.action}` ({a.method} {a.url}); {a.reason}.\n"
            f"Approve: `sudo tf approvals approve {a.id}` - deny: `sudo tf approvals deny {a.id} --note ...`")
    if not buttons:
        return {"text": text}
    return {"text": text, "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        {"type": "actions", "block_id": f"tf_approval_{a.id}"[:255], "elements": [
            {"type": "button", "action_id": APPROVE, "value": a.id, "style": "primary",
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": DENY, "value": a.id, "style": "danger",
             "text": {"type": "plain_text", "text": "Deny"}},
        ]},
    ]}

log = logging.getLogger("trustfence.daemon")


class Notifier:
    """Posts ``{"text": ...}`` to ``url``; ``resolve`` and ``ca`` (the daemon's upstream trust bundle: public
    roots plus any extra CA) are the enforcer's own upstream settings."""

    def __init__(self, url: str, resolve: Mapping[str, tuple[str, int | None]], ca: Path,
                 buttons: bool = False) -> None:
        self.url, self.resolve, self.ca, self.buttons = url, resolve, ca, buttons

    def __call__(self, a: Approval) -> None:
        threading.Thread(target=self._post, args=(message(a, self.buttons), a.id), daemon=True).start()

    def _post(self, msg: dict[str, Any], approval_id: str) -> None:
        post(self.url, msg, self.resolve, self.ca, f"approval {approval_id}")


def post(url: str, msg: dict[str, Any], resolve: Mapping[str, tuple[str, int | None]], ca: Path, what: str) -> None:
    """POST ``msg`` as JSON to the https ``url`` (blocking, 5 s timeout); a failure is logged, never raised."""
    u = urlsplit(url)
    host, port = u.hostname or "", u.port or 443
    addr, mapped = resolve.get(host, (host, None))
    body = json.dumps(msg).encode()
    head = (f"POST {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        ctx = ssl.create_default_context(cafile=str(ca) if ca.exists() else None)
        with socket.create_connection((addr, mapped or port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(head.encode() + body)
            status = s.recv(64).split(b" ", 2)[1:2]
        if status != [b"200"]:
            log.error("%s: %s answered %s", what, host, status)
    except (OSError, ssl.SSLError, IndexError) as e:
        log.error("%s: could not post to %s: %s", what, host, e)
