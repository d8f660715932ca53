"""Mode A: the daemon performs an allowed action itself, as the enforcer would forward it.

The request (built by ``routes.build`` and checked by the connector's own classification) gets the
connector's credential exactly as the ``Inject`` addon gives one: only after an explicit allow (a request
allowed by monitor or soft enforcement goes without), only to a host the vault entry is bound to, for a
gateway it is scoped to, never over cleartext HTTP, with whatever credential headers were there replaced.
A connector that needs a credential it cannot have is refused, never sent bare. The row is journalled before
the request leaves (``Store.begin``) and completed with the upstream's answer; the answer comes back with the
secret scrubbed out (and so is a path the connector never records, a webhook URL's). Names resolve through the daemon's loop, where the enforcer's resolver refuses private
addresses unless ``upstream.resolve`` maps them, and TLS is checked against the enforcer's upstream trust.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import httpx

from trustfence.agent.advisory.errors import ApiError
from trustfence.agent.advisory.requests import ActionRequest
from trustfence.agent.advisory.routes import Outgoing
from trustfence.connectors import Connector
from trustfence.proxy.inject import CLEARTEXT
from trustfence.proxy.record import params_text
from trustfence.proxy.state import EnforcerState, Gateway
from trustfence.store import StoreFull, TrafficRow
from trustfence.vault import VaultError, apply
from trustfence.vault.redact import StreamScrub

__all__ = ["ANSWER_MAX", "Executed", "Refusal", "perform"]

ANSWER_MAX = 1 << 20
"""Bytes of the upstream's answer passed back; the rest is cut (``truncated``)."""
TIMEOUT = 30.0


class Refusal(ApiError):
    """Not sent: ``status`` (403, 502, 503) and the reason; the row says the same."""


@dataclass(frozen=True, slots=True)
class Executed:
    """What the upstream answered (credential scrubbed)."""

    status: int
    content_type: str
    body: bytes
    truncated: bool


async def perform(state: EnforcerState, conn: Connector, out: Outgoing, req: ActionRequest, gw: Gateway,
                  trust: Path | None) -> Executed:
    """Send ``out`` for ``req`` and return the answer; raise Refusal when it must not or could not be sent."""
    started = time.time()
    row = _row(req, gw, out, started)
    row.path = conn.param_path(out.path)  # a webhook's path is its secret: recorded as the connector records it
    outcome = req.outcome
    try:
        if (switch := state.switches.blocking(gw.name, conn.name)) is not None:
            raise Refusal(403, switch.describe())
        headers, query, secret = _credential(state, conn, out, req, gw)
    except Refusal as e:
        _finish(state, row, "denied", str(e), e.status)
        raise
    if state.store is None:
        raise Refusal(503, "traffic log unavailable: no store; refused rather than sent unrecorded")
    try:
        row.seq = state.store.begin(replace(row, status=0))
    except StoreFull as e:
        state.store.refused += 1
        raise Refusal(503, f"{e}; refused rather than sent unrecorded") from None
    # A path the connector will not record (a webhook URL's secret) does not come back in the answer either.
    scrub = StreamScrub([x for x in (secret, out.path if row.path != out.path else "") if x])
    try:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(trust)) if trust else True
        async with httpx.AsyncClient(verify=verify, timeout=TIMEOUT, follow_redirects=False,
                                     trust_env=False) as client:
            async with client.stream(out.method, replace(out, query=tuple(query)).url, headers=headers,
                                     content=out.body or None) as resp:
                body, truncated = b"", False
                async for chunk in resp.aiter_raw():
                    body += chunk
                    if len(body) > ANSWER_MAX:
                        body, truncated = body[:ANSWER_MAX], True
                        break
    except (httpx.HTTPError, OSError) as e:
        _finish(state, row, "error", f"upstream error: {type(e).__name__}: {e}", 502, secret=secret)
        raise Refusal(502, f"the upstream could not be reached: {type(e).__name__}") from None
    except Exception as e:  # noqa: BLE001 - the journalled request still gets its final row
        _finish(state, row, "error", f"internal error while sending: {type(e).__name__}", 500, secret=secret)
        raise Refusal(500, f"the request could not be sent: {type(e).__name__}") from None
    body = scrub.scrub(body)
    row.upstream_status, row.bytes_out = resp.status_code, len(body)
    assert outcome is not None
    _finish(state, row, outcome.outcome, row.reason, resp.status_code, secret=secret)
    ctype = scrub.scrub(resp.headers.get("content-type", "").encode()).decode("utf-8", "replace")
    return Executed(resp.status_code, ctype, body, truncated)


def _credential(state: EnforcerState, conn: Connector, out: Outgoing, req: ActionRequest, gw: Gateway
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """Headers and query with the credential in (as ``Inject`` puts it), and the secret ("" for none)."""
    headers, query = list(out.headers.items()), list(out.query)
    outcome, creds = req.outcome, state.credentials
    explicit = outcome is not None and outcome.outcome == "allowed" and outcome.decision is not None \
        and outcome.decision.verdict == "allow"
    if not explicit or not creds.needed(conn.name) or out.host in conn.no_credential_hosts:
        return headers, query, ""
    fix = f"sudo tf connector add {conn.type_name} --name {conn.name} --token-stdin"
    if creds.vault is None:
        raise Refusal(403, f"the credential of connector {conn.name} is unavailable, so the request is not sent: "
                           f"{creds.error} ({fix})")
    if out.scheme != "https":
        raise Refusal(403, CLEARTEXT)
    try:
        entry, secret = creds.vault.secret_for(conn.name, host=out.host, gateway=gw.name)
        headers, query = apply(entry.inject, headers, query, secret)
    except VaultError as e:
        raise Refusal(403, f"the credential of connector {conn.name} was not sent: {e} ({fix})") from None
    return headers + [("accept-encoding", "identity")], query, secret  # identity: the answer is scrubbed whole


def _row(req: ActionRequest, gw: Gateway, out: Outgoing, started: float) -> TrafficRow:
    dec = req.outcome.decision if req.outcome else None
    return TrafficRow(
        ts=datetime.fromtimestamp(started, timezone.utc).replace(tzinfo=None), gateway=gw.name,
        sandbox=gw.sandbox, client_addr=req.client, method=out.method, scheme=out.scheme, host=out.host,
        port=out.port, path=out.path, connector=req.action.connector, action=req.action.name,
        decision=req.outcome.outcome if req.outcome else "denied",
        reason=f"executed for agent {req.agent} (action request {req.id}): "
               + (req.outcome.reason if req.outcome else ""),
        rule_id=dec.rule_id if dec else "", decision_id=dec.decision_id if dec else "", status=0,
        upstream_status=None, latency_ms=0.0, bytes_in=len(out.body), bytes_out=0, params=params_text(req.action))


def _finish(state: EnforcerState, row: TrafficRow, decision: str, reason: str, status: int, *,
            secret: str = "") -> None:
    row.decision, row.status = decision, status
    row.reason = StreamScrub([secret]).scrub(reason.encode()).decode() if secret else reason
    row.latency_ms = round((time.time() - row.ts.replace(tzinfo=timezone.utc).timestamp()) * 1000, 3)
    if state.store is not None:
        try:
            state.store.submit(row)
        except StoreFull:
            pass  # the journal's first record of it stands; the writer reports the full queue
