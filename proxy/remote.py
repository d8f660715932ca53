"""What an enforcer worker process asks the daemon instead of deciding alone.

A worker runs the same addons in the same order as the daemon's own enforcer; the few that touch what must be
one for the whole host are replaced by subclasses that call the daemon over the worker's link:

- RemoteFairness: a sandbox's open connections are counted by the daemon, so its cap holds for the host;
- RemoteIdentify: who opened the connection (the eBPF lock's record is popped by the daemon, once);
- RemoteRateLimit, RemoteActionRateLimit: the daemon's one Limiter admits, so a budget is exact across workers;
- RemoteRecord: the daemon journals a request before the worker forwards it; no ack, no forwarding;
- RemoteApprovals: the hold lives in the daemon's ApprovalQueue; ``tf approvals approve`` answers it there.

Each is fail closed: a link that fails answers the request 403 (or 503 for the journal), never forwards it.
RemoteStore stands for ``state.store``: final rows are shipped in order, never written here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import connection, http
from trustfence.proxy.approvals import Approvals
from trustfence.proxy.fairness import Fairness
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.holding import HoldAnswer, unrecordable
from trustfence.proxy.holds import Approval, Held
from trustfence.proxy.identify import Identify
from trustfence.proxy.limiter import applying
from trustfence.proxy.ratelimit import ActionRateLimit, RateLimit, refuse
from trustfence.proxy.record import Record, row_of
from trustfence.proxy.responses import deny, settled
from trustfence.proxy.state import EnforcerState, Origin
from trustfence.proxy.workerlink import Channel, LinkError
from trustfence.store import StoreFull, TrafficRow

__all__ = ["RemoteActionRateLimit", "RemoteApprovals", "RemoteFairness", "RemoteIdentify", "RemoteOrigin",
           "RemoteRateLimit", "RemoteRecord", "RemoteStore", "ask_origin", "replace_remote"]

log = logging.getLogger("trustfence.enforcer")

_KEEP = 5.0  # seconds a closed connection's origin stays known (for the row written after it was cut)


class RemoteStore:
    """``state.store`` in a worker: rows go to the daemon's writer; ``unavailable`` is the daemon's last word."""

    def __init__(self, link: Channel) -> None:
        self.link = link
        self.why = ""  # the daemon's Store.unavailable(), pushed with the state
        self._refused = 0
        self.begun = 0  # requests this worker had journalled (its share of the traffic)

    @property
    def refused(self) -> int:
        """Requests this worker refused because they could not be recorded. Each one counted here (``+= 1``,
        as on the daemon's Store) is told to the daemon, whose count ``tf status`` shows for the host."""
        return self._refused

    @refused.setter
    def refused(self, value: int) -> None:
        more, self._refused = value - self._refused, value
        try:
            self.link.send("refused", more)
        except LinkError:
            pass  # the daemon is gone: this worker exits with it

    def unavailable(self) -> str:
        return self.why or ("the link to the daemon is closed" if self.link.closed.is_set() else "")

    def begin(self, row: TrafficRow) -> int:
        raise StoreFull("traffic log unavailable: a worker journals through RemoteRecord only")

    def submit(self, row: TrafficRow, *, strict: bool = False) -> int:
        try:
            self.link.send("submit", row)
            self.link.flush()  # with what was queued before it: in the daemon before the agent has the response
        except LinkError as e:
            raise StoreFull(f"traffic log unavailable: {e}") from None
        return row.seq


class RemoteOrigin:
    """First in a worker's order: who opened each agent connection, asked of the daemon as it is accepted, so
    the rows of connections refused or cut before any request (Fairness, TlsRefused) name the process too.
    It is also the worker's ``state.origins``: what it was told, by address and port, kept a few seconds after
    the connection closed (a cut connection's row is written up to a second later)."""

    name = "remoteorigin"

    def __init__(self, state: EnforcerState, link: Channel) -> None:
        self.state, self.link = state, link
        self.known: dict[tuple[str, int], Origin] = {}
        state.origins = self.lookup

    def lookup(self, addr: str, port: int) -> Origin | None:
        return self.known.get((addr, port))

    def client_disconnected(self, client: connection.Client) -> None:
        if client.peername:
            key = (client.peername[0], client.peername[1])
            asyncio.get_running_loop().call_later(_KEEP, self.known.pop, key, None)

    async def client_connected(self, client: connection.Client) -> None:
        try:
            found = await ask_origin(self.state, self.link, client)
        except LinkError:
            return  # Identify asks again, and refuses the request if it cannot
        if found is not None and client.peername:
            self.known[(client.peername[0], client.peername[1])] = found[0]


async def ask_origin(state: EnforcerState, link: Channel,
                     client: connection.Client) -> tuple[Origin, str] | None:
    """The daemon's answer for who opened ``client`` (once per connection: kept in ``state.conn_origins``);
    None for a connection from no sandbox's address. Raises LinkError when the daemon cannot be asked."""
    if not client.peername:
        return None
    if client.id in state.conn_origins:
        return state.conn_origins[client.id]
    addr, port = client.peername[0], client.peername[1]
    if addr not in state.gateways:
        return None
    found: tuple[Origin, str] | None = await link.call("origin", addr, port)
    state.conn_origins[client.id] = found
    return found


class RemoteFairness(Fairness):
    """Fairness, with each sandbox's connections counted against its cap by the daemon's Fairness (one count
    for every process; the daemon gives a dead worker's back). Timeouts are swept here, as in the daemon."""

    def __init__(self, state: EnforcerState, link: Channel) -> None:
        super().__init__(state)
        self.link = link

    async def client_connected(self, client: connection.Client) -> None:  # type: ignore[override]
        if (accepted := self._accepted(client)) is None:
            return
        conn, key = accepted
        try:
            taken = bool(await self.link.call("take_conn", key))
        except LinkError as e:  # not counted, not served
            client.error = f"the daemon cannot count this connection: {e}"
            return
        if not taken:
            self._refuse(client, conn, key)
            return
        self._conns[client.id] = conn

    def give(self, key: str) -> None:
        try:
            self.link.send("give_conn", key)
        except LinkError:
            pass  # the daemon gives back every connection of a worker whose link is gone


class RemoteIdentify(Identify):
    """Identify, with the connection's origin fetched from the daemon once per connection first."""

    def __init__(self, state: EnforcerState, link: Channel) -> None:
        super().__init__(state)
        self.link = link

    async def _fetch(self, flow: http.HTTPFlow) -> None:
        if not settled(flow):
            await ask_origin(self.state, self.link, flow.client_conn)

    async def http_connect(self, flow: http.HTTPFlow) -> None:  # type: ignore[override]
        try:
            await self._fetch(flow)
        except Exception as e:  # noqa: BLE001 - unknown origin: refused, never guessed
            deny(flow, f"internal error in Identify: {type(e).__name__}: {e}")
        super().http_connect(flow)

    async def request(self, flow: http.HTTPFlow) -> None:  # type: ignore[override]
        try:
            await self._fetch(flow)
        except Exception as e:  # noqa: BLE001
            deny(flow, f"internal error in Identify: {type(e).__name__}: {e}")
        super().request(flow)


class RemoteRateLimit(RateLimit):
    """The gateway's budget, admitted by the daemon's Limiter (exact across workers)."""

    def __init__(self, state: EnforcerState, link: Channel) -> None:
        super().__init__(state)
        self.link = link

    async def request(self, flow: http.HTTPFlow) -> None:  # type: ignore[override]
        if settled(flow):
            return
        try:
            gw = record_of(flow).identified()
            refusal = await self.link.call("admit_gateway", gw.name)
        except Exception as e:  # noqa: BLE001 - no admission, no request
            deny(flow, f"internal error in RateLimit: {type(e).__name__}: {e}")
            return
        if refusal is not None and not settled(flow):
            refuse(flow, refusal)


class RemoteActionRateLimit(ActionRateLimit):
    """The action rules' budgets, admitted by the daemon's Limiter. The rules themselves are pushed with the
    state (``rules``): a request no rule matches costs no call (and takes no slot there either)."""

    def __init__(self, state: EnforcerState, link: Channel) -> None:
        super().__init__(state)
        self.link = link
        self.rules: tuple[tuple[str, str, int], ...] | None = None  # None: not known yet, every request asks

    async def request(self, flow: http.HTTPFlow) -> None:  # type: ignore[override]
        if settled(flow):
            return
        rec = record_of(flow)
        gw, action = rec.gateway, rec.action
        if gw is None or action is None or not action.connector:
            return  # no connector named it: Enforce denies it at every level (no gateway: Identify denied it)
        if self.rules is not None and not applying(self.rules, gw.name, action.name):
            return
        try:
            refusal = await self.link.call("admit_action", gw.name, action.name)
        except Exception as e:  # noqa: BLE001
            deny(flow, f"internal error in ActionRateLimit: {type(e).__name__}: {e}")
            return
        if refusal is not None and not settled(flow):
            refuse(flow, refusal)


class RemoteRecord(Record):
    """Record, with the journal record written by the daemon: the request waits for its sequence number."""

    def __init__(self, state: EnforcerState, link: Channel, store: RemoteStore) -> None:
        super().__init__(state)
        self.link, self.store = link, store

    async def request(self, flow: http.HTTPFlow) -> None:  # type: ignore[override]
        if settled(flow):
            return
        try:
            rec = record_of(flow)
            row = row_of(flow, self.state, pending=True)
            row.seq = rec.seq = await self.link.call("begin", row)
            rec.journalled = row  # the final row completes it, as in the daemon
            self.store.begun += 1
        except (LinkError, StoreFull) as e:
            if not settled(flow):
                self._refuse(flow, str(e) if str(e).startswith("traffic log unavailable") else
                             f"traffic log unavailable: {e}")
        except Exception as e:  # noqa: BLE001 - unrecorded is never forwarded
            log.exception("RemoteRecord.request failed; denying")
            deny(flow, f"internal error in Record: {type(e).__name__}")


class RemoteApprovals(Approvals):
    """Approvals, with the hold kept by the daemon (``proxy.holding.hold`` there, on the worker's ask); the worker
    applies the answer to the flow as the daemon's own enforcer does."""

    def __init__(self, state: EnforcerState, link: Channel) -> None:
        super().__init__(state)
        self.link = link

    async def _ask(self, what: Held, opened: Callable[[Approval], None]) -> HoldAnswer:
        # the link may be closed already: that is this process's store unavailable, not a failed hold
        if (refused := unrecordable(self.state)) is not None:
            return refused
        return HoldAnswer.from_dict(await self.link.call("hold", what))


def replace_remote(addons: list[Any], state: EnforcerState, link: Channel, store: RemoteStore) -> list[Any]:
    """``enforcer_addons(state)`` with the daemon-owned steps swapped for their remote forms (same names, same
    places), after RemoteOrigin."""
    swap: dict[type, Any] = {
        Fairness: lambda: RemoteFairness(state, link),
        Identify: lambda: RemoteIdentify(state, link),
        RateLimit: lambda: RemoteRateLimit(state, link),
        ActionRateLimit: lambda: RemoteActionRateLimit(state, link),
        Record: lambda: RemoteRecord(state, link, store),
        Approvals: lambda: RemoteApprovals(state, link),
    }
    out: list[Any] = [RemoteOrigin(state, link)]
    for a in addons:
        make = swap.get(type(a))
        if make is None:
            out.append(a)
            continue
        new = make()
        new.name = type(a).__name__.lower()  # other addons find it by the name of what it stands for
        out.append(new)
    return out
