"""FlowRecord: everything the enforcer learns about one request, in one typed record on the flow.

Identify creates it (``record_of``); every later addon reads what earlier ones found and fills in its own part,
and Record turns it into the stored row. Nothing is derived twice from the flow: the canonical destination,
the connectors' view of the request (host, path, query, headers, body, built once by Classify) and the action
are computed once and read from here by Enforce, Approvals, Inject and Record.

A flow mitmproxy refused before any hook of ours ran (malformed, a body over the bound) still gets a record
the first time anyone asks for it: ``record_of`` creates it empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mitmproxy import http

from trustfence.bpf.guard import Origin
from trustfence.connectors import Action, RequestView
from trustfence.policy import CompiledPolicy, Decision, Facts
from trustfence.proxy.destination import Destination
from trustfence.proxy.state import Gateway
from trustfence.store import TrafficRow

if TYPE_CHECKING:
    from trustfence.proxy.bodies import Body  # bodies answers through responses, which reads records

__all__ = ["FlowRecord", "RECORD", "record_of"]

RECORD = "tf.record"
"""The one key under which a flow carries its record in ``flow.metadata``."""


@dataclass(slots=True, eq=False)
class FlowRecord:
    """One request as the enforcer saw it; each field is filled by the addon named beside it."""

    gateway: Gateway | None = None  # Identify: the sandbox the source address belongs to (None: unknown)
    origin: tuple[Origin, str] | None = None  # Identify: who opened the connection (eBPF record, executable)
    body: Body | None = None  # Bodies: the request body decoded once, within bounds
    dest: Destination | None = None  # Classify: the canonical destination every name in the request agreed on
    view: RequestView | None = None  # Classify: what connectors read (built once; Enforce and Record reuse it)
    action: Action | None = None  # Classify: what the request does
    decision: Decision | None = None  # Enforce (Approvals replaces it with the approved one)
    facts: tuple[CompiledPolicy, Facts] | None = None  # Enforce: what the decision was made on (row's policies)
    matched: list[str] | None = None  # Record: the ids of the policies that applied, read once from ``facts``
    level: str = ""  # Enforce: the gateway's enforcement level when it decided
    # What happened: allowed | denied | would_deny | would_require_approval | pending_approval | rate_limited |
    # killed | error; "" until some step decided it
    outcome: str = ""
    reason: str = ""  # why, as the row says it
    approval: str = ""  # Approvals: the id of the approval the request was held under
    secret: str | None = None  # Inject: the credential injected (never in a row, scrubbed from responses)
    secret_forms: list[str] = field(default_factory=list)  # Inject: every form of it that must not come back
    seq: int = 0  # Record: the sequence number of the request's record in the traffic journal
    journalled: TrafficRow | None = None  # Record: the row journalled before forwarding; the final row completes it
    killed: str = ""  # a kill switch (or Upgrades) cut it in transit: why
    cut: tuple[int, str] | None = None  # Bounds/Fairness cut its body mid-transfer: (status, reason)
    recorded: bool = False  # Record: its final row was written

    def identified(self) -> Gateway:
        """The gateway; raises (so the hook fails closed) when Identify has not named one."""
        if self.gateway is None:
            raise LookupError("the request has no gateway")
        return self.gateway

    def decoded(self) -> Body:
        """The decoded body; raises (so the hook fails closed) when Bodies has not read it."""
        if self.body is None:
            raise LookupError("the request body was not read")
        return self.body

    def classified(self) -> Action:
        """The action; raises (so the hook fails closed) when Classify has not named one."""
        if self.action is None:
            raise LookupError("the request has no action")
        return self.action

    def destined(self) -> Destination:
        """The canonical destination; raises (so the hook fails closed) when Classify has not agreed one."""
        if self.dest is None:
            raise LookupError("the request has no canonical destination")
        return self.dest


def record_of(flow: http.HTTPFlow) -> FlowRecord:
    """The flow's record, created empty the first time it is asked for."""
    rec: FlowRecord | None = flow.metadata.get(RECORD)
    if rec is None:
        rec = flow.metadata[RECORD] = FlowRecord()
    return rec
