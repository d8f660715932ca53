"""Record: one redacted traffic row per request, journalled before anything reaches the upstream.

Its ``request`` hook runs last among the enforcement hooks: it appends the request's record to the journal
(``Store.begin``) and keeps the sequence number in the flow; when that cannot be done the request is refused
with 503 (``traffic log unavailable: ...``), never forwarded unrecorded. The row written on response or
error carries the same sequence number and supersedes the journal's first record, so a request is one row.
An allowed CONNECT opens nothing upstream (connections are lazy): the first request inside it is the one
recorded before it goes out; while the log is unavailable the CONNECT itself is refused.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from mitmproxy import dns, http
from mitmproxy.net.dns import response_codes, types

from trustfence.connectors import Action
from trustfence.policy import matched_policies
from trustfence.proxy.bounds import Streamed
from trustfence.proxy.calls import Outcome
from trustfence.proxy.flowrecord import FlowRecord, record_of
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.state import EnforcerState, Gateway, Origin
from trustfence.store import StoreFull, TrafficRow
from trustfence.vault import scrub

__all__ = ["Record", "call_row", "connection_row", "dns_row", "params_text", "refuse_unrecordable", "row_of"]

log = logging.getLogger("trustfence.enforcer")


class Record:
    """Journal each request before it is forwarded; write its row on response or error, exactly once."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        store = self.state.store
        try:
            if store is None:
                raise StoreFull("traffic log unavailable: no store")
            rec = record_of(flow)
            row = row_of(flow, self.state, pending=True)
            rec.seq = store.begin(row)
            rec.journalled = row  # the final row completes it (the journal has encoded it already)
        except StoreFull as e:
            self._refuse(flow, str(e))

    def http_connect(self, flow: http.HTTPFlow) -> None:
        store = self.state.store
        if flow.response is None and store is not None and (why := store.unavailable()):
            self._refuse(flow, f"traffic log unavailable: {why}")
        if flow.response is not None:  # refused before a tunnel was opened
            self._record(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def _refuse(self, flow: http.HTTPFlow, reason: str) -> None:
        refuse_unrecordable(flow, self.state, reason)

    def _record(self, flow: http.HTTPFlow) -> None:
        rec = record_of(flow)
        if rec.recorded or self.state.store is None:
            return
        rec.recorded = True
        try:
            row = row_of(flow, self.state)
        except Exception as e:  # noqa: BLE001 - an odd request still gets a row, with what could be read
            log.exception("traffic row of a request could not be built; recording what is known")
            row = bare_row(flow, f"row could not be built: {type(e).__name__}: {e}")
        try:
            self.state.store.submit(row)
        except StoreFull as e:
            log.error("traffic row %s lost: %s", row.seq, e)


def refuse_unrecordable(flow: http.HTTPFlow, state: EnforcerState, reason: str,
                        what: str = "refused rather than forwarded unrecorded") -> None:
    """503: the request cannot be recorded now (``reason`` starts ``traffic log unavailable:``)."""
    if state.store is not None:
        state.store.refused += 1
    reason = f"{reason}; {what}"
    rec = record_of(flow)
    deny(flow, reason, status=503, decision=rec.decision)
    rec.reason = reason  # the row says why it was refused, not what was decided before


def bare_row(flow: http.HTTPFlow, reason: str) -> TrafficRow:
    """The least a row can say: when, from where, what came back, and why it says no more."""
    peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
    return TrafficRow(ts=datetime.fromtimestamp(flow.request.timestamp_start, timezone.utc).replace(tzinfo=None),
                      gateway="", sandbox="", client_addr=peer, method="", scheme="", host="", port=0, path="",
                      connector="", action="", decision=record_of(flow).outcome or "error", reason=reason,
                      rule_id="", decision_id="", status=flow.response.status_code if flow.response else 502,
                      upstream_status=None, latency_ms=0.0, bytes_in=0, bytes_out=0,
                      seq=record_of(flow).seq)


def connection_row(state: EnforcerState, gw: Gateway | None, addr: str, decision: str, reason: str, status: int, *,
                   origin: tuple[Origin, str] | None = None, ts: float | None = None, scheme: str = "",
                   host: str = "", port: int = 0, params: str = "") -> TrafficRow:
    """The row of a connection that never became a request: refused as it was accepted, cut while idle, a TLS
    handshake the client broke off, bytes mitmproxy could not read as HTTP. Who opened it comes from the
    eBPF lock's record (``origin``) when it was read."""
    o, exe = origin if origin else (None, "")
    return TrafficRow(
        ts=datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).replace(tzinfo=None),
        gateway=gw.name if gw else "", sandbox=gw.sandbox if gw else "", client_addr=addr, method="", scheme=scheme,
        host=host, port=port, path="", connector="", action="", decision=decision, reason=reason, rule_id="",
        decision_id="", status=status, upstream_status=None, latency_ms=0.0, bytes_in=0, bytes_out=0,
        pid=o.pid if o else None, uid=o.uid if o else None, comm=o.comm if o else "", exe=exe, params=params,
        environment=state.environments.get(gw.name, "") if gw else "")


def call_row(gw: Gateway, action: Action, outcome: Outcome, *, started: float, client: str, method: str,
             scheme: str, path: str, bytes_in: int, status: int, environment: str = "",
             uid: int | None = None) -> TrafficRow:
    """The row of a call decided without an HTTP request of the agent's: a stdio MCP message (scheme ``stdio``),
    an advisory action request (``advisory``). ``host`` is the connector that decided, never a name the agent
    chose; ``path`` the target the agent named, cut at 512 characters."""
    dec = outcome.decision
    return TrafficRow(
        ts=datetime.fromtimestamp(started, timezone.utc).replace(tzinfo=None), gateway=gw.name, sandbox=gw.sandbox,
        client_addr=client, method=method, scheme=scheme, host=action.connector, port=0, path=path[:512],
        connector=action.connector, action=action.name, decision=outcome.outcome, reason=outcome.reason,
        rule_id=dec.rule_id if dec else "", decision_id=dec.decision_id if dec else "", status=status,
        upstream_status=None, latency_ms=round((time.time() - started) * 1000, 3), bytes_in=bytes_in, bytes_out=0,
        uid=uid, params=params_text(action), risk=action.risk, environment=environment, level=outcome.level,
        policies=list(outcome.policies) if outcome.policies is not None else None, approval_id=outcome.approval)


def dns_row(state: EnforcerState, flow: dns.DNSFlow, gw: Gateway | None, reason: str,
            origin: tuple[Origin, str] | None) -> TrafficRow:
    """The row of one DNS query the enforcer answered itself (``flow.response`` set): the query's name as the
    host, its type as the method and ``dns.<type>`` as the action, the DNS response code as the status."""
    q, resp = flow.request.question, flow.response
    assert resp is not None  # rows are written for answered queries only
    name = q.name.lower().rstrip(".") if q else ""
    qtype = types.to_str(q.type) if q else "?"
    connector = state.connectors.for_host(name) if name else None
    peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
    row = connection_row(state, gw, peer, "allowed" if resp.response_code == response_codes.NOERROR else "denied",
                         reason, resp.response_code, origin=origin, ts=flow.request.timestamp or time.time(),
                         scheme="dns", host=name, port=53)
    row.method, row.action, row.connector = qtype, f"dns.{qtype.lower()}", connector.name if connector else ""
    row.bytes_in, row.bytes_out = len(flow.request.packed), len(resp.packed)
    return row


def row_of(flow: http.HTTPFlow, state: EnforcerState, *, pending: bool = False) -> TrafficRow:
    """The flow's row; ``pending``: before forwarding (status 0 until the final row replaces it).

    What the request was is read once: the final row completes the row journalled before forwarding (the
    record's ``journalled``) with what happened, rather than reading the whole flow again."""
    rec = record_of(flow)
    req, resp = flow.request, flow.response
    row = _request_row(flow, state, rec) if pending or rec.journalled is None else rec.journalled
    outcome = rec.outcome or "denied"
    forwarded = outcome == "allowed" or outcome.startswith("would_")  # would_deny: soft_enforce or monitor
    upstream = forwarded and resp is not None and not flow.error
    reason = rec.reason
    status = resp.status_code if resp else 0 if pending else 502
    if flow.error and rec.cut is not None:  # the enforcer cut it: a body too large or too slow
        outcome, (status, reason) = "denied", rec.cut
    elif flow.error and not rec.outcome:
        # mitmproxy refused the request itself (malformed, smuggling attempt) and answered 400.
        outcome, reason, status = "denied", f"malformed request: {flow.error.msg}", 400
    elif flow.error and rec.killed:  # cut in transit by a kill switch
        outcome, reason = "killed", rec.killed
    elif flow.error:
        outcome, reason = "error", f"{reason}; upstream error: {flow.error.msg}".lstrip("; ")
    if rec.secret is not None:  # an upstream error may quote what was sent
        reason = scrub(reason, [rec.secret])
    end = (resp.timestamp_end if resp and resp.timestamp_end else None) or (req.timestamp_start if pending
                                                                            else time.time())
    row.decision, row.reason, row.status = outcome, reason, status
    row.upstream_status = resp.status_code if upstream and resp else None
    row.latency_ms = round((end - req.timestamp_start) * 1000, 3)
    row.bytes_out = _bytes_out(resp)
    return row


def _request_row(flow: http.HTTPFlow, state: EnforcerState, rec: FlowRecord) -> TrafficRow:
    """The row's fields that say what the request was (``row_of`` adds what happened to it)."""
    peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
    # A request mitmproxy rejected as malformed never reached Identify: look the gateway up here.
    gw: Gateway | None = rec.gateway or state.gateways.get(peer)
    action, decision, dest, found = rec.action, rec.decision, rec.dest, rec.origin
    req = flow.request
    path = rec.view.path if rec.view is not None else req.path.split("?", 1)[0]
    params = params_text(action)
    if rec.secret is not None:
        path, params = scrub(path, [rec.secret]), scrub(params, [rec.secret])
    return TrafficRow(
        ts=datetime.fromtimestamp(req.timestamp_start, timezone.utc).replace(tzinfo=None),
        gateway=gw.name if gw else "",
        sandbox=gw.sandbox if gw else "",
        client_addr=peer,
        method=req.method,
        scheme=req.scheme,
        host=dest.host if dest else req.pretty_host,
        port=dest.port if dest else req.port,
        path=path,
        connector=action.connector if action else "",
        action=action.name if action else "",
        decision="",
        reason="",
        rule_id=decision.rule_id if decision else "",
        decision_id=decision.decision_id if decision else "",
        status=0,
        upstream_status=None,
        latency_ms=0.0,
        bytes_in=len(req.raw_content or b""),
        bytes_out=0,
        pid=found[0].pid if found else None,
        uid=found[0].uid if found else None,
        comm=found[0].comm if found else "",
        exe=found[1] if found else "",
        params=params,
        risk=action.risk if action and action.connector else "",
        environment=state.environments.get(gw.name, "") if gw else "",
        level=rec.level,
        policies=_matched(rec),
        approval_id=rec.approval,
        seq=rec.seq,
    )


def _bytes_out(resp: http.Response | None) -> int:
    """The response body's size as received: counted while streamed, else what was held."""
    if resp is None:
        return 0
    return resp.stream.size if isinstance(resp.stream, Streamed) else len(resp.raw_content or b"")


def _matched(rec: FlowRecord) -> list[str] | None:
    """The ids of every policy that applied, read once per flow from what the decision was made on; an empty
    list when the request was decided without policies applying, None when it was never decided."""
    if rec.matched is None and rec.facts is not None:
        policy, facts = rec.facts
        rec.matched = list(matched_policies(policy, facts))
    return rec.matched


PARAMS_MAX = 8192
"""Longest params JSON kept in a row; a longer one keeps only the names of its params."""
_VALUE_MAX = 256  # characters of one text value kept (a tool's argument may be a whole file)
_ITEMS_MAX = 64  # elements of one list or table kept


def _trim(value: object, depth: int = 0) -> object:
    if isinstance(value, str):
        return value if len(value) <= _VALUE_MAX else value[:_VALUE_MAX] + "…"
    if depth > 4:
        return "…"
    if isinstance(value, Mapping):
        return {str(k): _trim(v, depth + 1) for k, v in list(value.items())[:_ITEMS_MAX]}
    if isinstance(value, (list, tuple)):
        return [_trim(v, depth + 1) for v in value[:_ITEMS_MAX]]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value if value is None or isinstance(value, (bool, int, float)) else str(value)[:_VALUE_MAX]


def params_text(action: Action | None) -> str:
    """The Action's params as JSON for the row: long texts and lists cut, the whole at most PARAMS_MAX."""
    if action is None or not action.params:
        return ""
    text = json.dumps(_trim(action.params), ensure_ascii=False)
    if len(text) > PARAMS_MAX:
        text = json.dumps({"truncated": sorted(str(k) for k in action.params)[:_ITEMS_MAX]})[:PARAMS_MAX]
    return text
