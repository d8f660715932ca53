"""Enforcer workers across cores: the daemon's side (``[enforcer] workers`` > 1).

The daemon's own enforcer is worker 0 and keeps everything it does alone (DNS, the store, approvals, kill
switches, the limiter). Each other worker is a fresh process (``trustfence.proxy.worker``) on a socketpair:
the daemon pushes it the enforcer state whenever a field changes (checked ten times a second, and at once
before a new sandbox's connections or a kill switch's cut), and answers its calls: a connection's origin and
its count against the sandbox's cap, rate-limit admission, the journal record before forwarding, holds for
approval. Final rows arrive in order and go to the one writer.

The daemon accepts every agent connection on the sandboxes' HTTP listeners and hands each to the least loaded
process (``_least_loaded``): the one with the fewest open connections, the daemon's own counted
``_DAEMON_WEIGHT`` times, as it also journals, writes and answers every worker (4 keep-alive connections: 1
in the daemon, 3 in one worker measured best on 2 cores); an idle daemon takes the first. The kernel's
alternatives were blind to load: one SO_REUSEPORT socket per process spread connections by a hash of their
addresses (4 keep-alive connections landed 3:1 or 4:0 more often than 2:2), and one shared queue went to
whichever process woke first. A worker that is behind (its channel full) or not ready gets none; the daemon
serves those.

A worker that dies is restarted with backoff, logged and counted (``tf status``); connections it held die
with it. A worker that stops answering (its event loop stuck, or the process stopped) is killed and restarted
the same way: the daemon asks it every ``_PING_EVERY`` seconds and waits ``_HUNG`` seconds for the answer.
Workers die with the daemon (PR_SET_PDEATHSIG) and are stopped with it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import time
from collections.abc import Coroutine
from typing import Any

from trustfence.proxy.approvals import Approvals
from trustfence.proxy.fairness import Fairness
from trustfence.proxy.holding import hold
from trustfence.proxy.holds import Held
from trustfence.proxy.master import Enforcer, serve_accepted
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.switches import Switch
from trustfence.proxy.worker import STATE_FIELDS
from trustfence.proxy.workerlink import Channel, LinkError, hand_conn
from trustfence.store import Store, StoreFull, TrafficRow

__all__ = ["WorkerPool", "pool_init"]

log = logging.getLogger("trustfence.workers")

_PUSH_EVERY = 0.1  # seconds between checks for changed state: a change reaches every worker well within 1 s
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds before restarting a worker that died (again and again)
_GONE = "outcome not recorded: the enforcer worker process died before the request finished"
_HEALTHY = 30.0  # a worker that lived this long starts the backoff afresh when it dies
_PING_EVERY = 2.0  # seconds between the daemon's questions to a worker that it still answers
_HUNG = 10.0  # seconds without an answer before a worker is taken for stuck, killed and restarted
_CUT_WAIT = 5.0  # seconds a kill switch's activation waits for each worker's count of what it closed
_DAEMON_WEIGHT = 3  # each connection the daemon serves counts as this many of a worker's (see the docstring)
_ACCEPT_BATCH = 100  # connections accepted per wake-up, as asyncio's own server does
_ACCEPT_RETRY = 1.0  # seconds before accepting again when descriptors or memory ran out
_OUT_OF = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Child:
    """One worker process and its link."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.link: Channel | None = None
        self.fds: socket.socket | None = None
        self.sent: dict[str, Any] = {}  # field -> the value last pushed (compared by identity, or by value)
        self.ready = False
        self.requests = 0  # journal records begun for this worker (its share of forwarded requests)
        self.rows = 0  # final rows it shipped (every request it answered, denied ones included)
        self.holds = 0  # requests it held for approval
        self.tasks: set[asyncio.Task[Any]] = set()
        self.open: dict[int, TrafficRow] = {}  # seq -> journal record begun, its final row not yet shipped
        self.conns: dict[str, int] = {}  # sandbox -> its connections open in this worker (max_connections_...)
        self.handed = 0  # connections handed to it and not yet closed there
        self.behind = False  # its connection channel was full at the last try


class WorkerPool:
    def __init__(self, count: int, state: EnforcerState, store: Store, enforcer: Enforcer,
                 init: dict[str, Any]) -> None:
        self.state, self.store, self.enforcer, self.init = state, store, enforcer, init
        self.children = [_Child(i) for i in range(1, count)]
        self.own = 0  # connections the daemon accepted and serves itself, still open
        self.serving: set[asyncio.Task[None]] = set()
        self.restarts = 0
        self._cuts: dict[str, asyncio.Future[int]] = {}  # scope -> the workers' count of what its switch closed
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._supervise(c)) for c in self.children]
        self._tasks.append(asyncio.create_task(self._pusher()))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for c in self.children:
            await self._end(c)

    def status(self) -> dict[str, Any]:
        return {"workers": len(self.children) + 1, "restarts": self.restarts, "connections": self.own,
                "children": [{"index": c.index, "pid": c.proc.pid if c.proc else None, "ready": c.ready,
                              "requests": c.requests, "rows": c.rows, "holds": c.holds,
                              "connections": c.handed}
                             for c in self.children]}

    # -- connections and kill switches -----------------------------------------------------------------------
    def listen(self, key: str) -> None:
        """Accept on the HTTP listeners opened under ``key`` and hand each connection to the least loaded
        process (in place of mitmproxy's own accepting). Every ready worker gets the state first: the new
        sandbox's gateway is known wherever its connections go."""
        for c in self.children:
            self._push(c)
        loop = asyncio.get_running_loop()
        for instance, sock in self.enforcer.tcp_listeners(key):
            loop.add_reader(sock.fileno(), self._accept, instance, sock)

    def _accept(self, instance: Any, sock: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as e:
                if e.errno not in _OUT_OF:
                    raise  # the loop logs it and calls again
                # Level-triggered: the listener would wake the loop at once, again and again. The connections
                # wait in its queue (the agent's connect may time out), as with asyncio's own server.
                log.error("accepting agent connections on %s: %s; again in %.0f s", instance.mode.full_spec,
                          e, _ACCEPT_RETRY)
                loop = asyncio.get_running_loop()
                loop.remove_reader(sock.fileno())
                loop.call_later(_ACCEPT_RETRY, self._resume, instance, sock)
                return
            self._hand(instance, conn)

    def _resume(self, instance: Any, sock: socket.socket) -> None:
        if sock.fileno() != -1:  # not closed meanwhile (the sandbox ended)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, instance, sock)

    def _hand(self, instance: Any, conn: socket.socket) -> None:
        conn.setblocking(False)
        c = self._least_loaded()
        if c is not None and c.fds is not None:
            try:
                hand_conn(c.fds, instance.mode.full_spec, conn)
            except OSError as e:
                if not c.behind:  # once until it takes one again: a flood would repeat it for each connection
                    log.warning("worker %d: connections not handed over (%s); the daemon serves them",
                                c.index, e)
                c.behind = True
            else:
                c.handed += 1
                c.behind = False
                conn.close()  # the worker has its own descriptor of it now
                return
        self.own += 1
        task = asyncio.create_task(self._serve_here(instance, conn))
        self.serving.add(task)
        task.add_done_callback(self.serving.discard)

    async def _serve_here(self, instance: Any, conn: socket.socket) -> None:
        try:
            await serve_accepted(instance, conn)
        except Exception:  # noqa: BLE001 - one connection's failure never stops the others
            log.exception("a connection on %s failed", instance.mode.full_spec)
        finally:
            self.own -= 1

    def _least_loaded(self) -> _Child | None:
        """The ready worker with the fewest open connections, or None when the daemon has no more (its own
        counted ``_DAEMON_WEIGHT`` times). Ties go to the daemon: an idle one takes the first connection, so a
        single agent's requests are served without a worker's calls to the daemon."""
        best, load = None, self.own * _DAEMON_WEIGHT
        for c in self.children:
            if c.ready and c.handed < load:
                best, load = c, c.handed
        return best

    def cut(self, switch: Switch) -> None:
        """After ``state.switches`` took the switch: push it, then every worker cuts its own connections; how
        many they closed together is ``await closed(scope)``."""
        calls = []
        for c in self.children:
            self._push(c)
            if c.link is not None and c.ready:  # one not ready serves nothing yet: it starts with the switch on
                calls.append(c.link.call("cut", switch))
        self._cuts[str(switch.scope)] = asyncio.ensure_future(self._count(switch, calls))

    async def closed(self, scope: str) -> int:
        """The connections the workers closed for the switch of ``scope`` just activated (0: none asked)."""
        task = self._cuts.pop(scope, None)
        return 0 if task is None else await task

    @staticmethod
    async def _count(switch: Switch, calls: list[Coroutine[Any, Any, Any]]) -> int:
        total = 0
        for got in await asyncio.gather(*(asyncio.wait_for(x, _CUT_WAIT) for x in calls), return_exceptions=True):
            if isinstance(got, int):
                total += got
            else:  # dead or stuck: its connections die with it (the supervisor or the watchdog sees to that)
                log.warning("a worker did not say what it closed for %s: %s", switch.describe(), got)
        return total

    # -- state ----------------------------------------------------------------------------------------------
    def _changed(self, c: _Child) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in STATE_FIELDS:
            value = getattr(self.state, name)
            if name == "gateways":  # the one field changed in place
                if c.sent.get(name) != value:
                    out[name] = dict(value)
            elif name not in c.sent or c.sent[name] is not value:
                out[name] = value
        why = self.store.unavailable()
        if c.sent.get("store_unavailable") != why:
            out["store_unavailable"] = why
        rules = self.state.limiter.actions  # which requests must ask for an action budget
        if "rate_actions" not in c.sent or c.sent["rate_actions"] is not rules:
            out["rate_actions"] = rules
        return out

    def _push(self, c: _Child) -> None:
        if not c.ready or c.link is None:
            return
        diff = self._changed(c)
        if diff:
            self._send(c, "state", diff)
            c.sent.update(diff)

    async def _pusher(self) -> None:
        while True:
            await asyncio.sleep(_PUSH_EVERY)
            for c in self.children:
                try:
                    self._push(c)
                except Exception:  # noqa: BLE001 - one bad push never stops the others
                    log.exception("worker %d: state push failed", c.index)

    def _send(self, c: _Child, *msg: Any) -> None:
        if c.link is None:
            return
        try:
            c.link.send(*msg)
        except LinkError:
            pass  # it is dying: the supervisor restarts it with the whole state
        except Exception as e:  # noqa: BLE001 - a message that cannot be sent (a value pickle refuses)
            # A worker that missed a state change would go on enforcing the older state: it is stopped, and
            # the daemon's own enforcer serves its connections until a restarted one takes the whole state.
            log.error("worker %d: %r could not be sent (%s: %s); stopping it", c.index, msg[0], type(e).__name__, e)
            if c.proc is not None and c.proc.returncode is None:
                c.proc.kill()

    # -- life -----------------------------------------------------------------------------------------------
    async def _supervise(self, c: _Child) -> None:
        failures = 0
        while not self._stopping:
            began = time.monotonic()
            try:
                await self._run(c)
            except Exception:  # noqa: BLE001 - a worker that cannot start is retried, not fatal
                log.exception("worker %d failed", c.index)
            await self._end(c)
            if self._stopping:
                return
            self.restarts += 1
            failures = 0 if time.monotonic() - began > _HEALTHY else failures + 1
            delay = _BACKOFF[min(failures, len(_BACKOFF) - 1)]
            log.error("worker %d exited; restarting in %.1f s (%d restart(s) so far)", c.index, delay,
                      self.restarts)
            await asyncio.sleep(delay)

    async def _run(self, c: _Child) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds_mine, fds_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            c.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "trustfence.proxy.worker", str(theirs.fileno()), str(fds_theirs.fileno()),
                str(os.getpid()), str(c.index), pass_fds=(theirs.fileno(), fds_theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
            fds_theirs.close()
        log.info("worker %d started (pid %d)", c.index, c.proc.pid)
        fds_mine.setblocking(False)  # a worker behind gets no more connections: the daemon never waits
        c.fds, c.sent = fds_mine, {}
        c.link = Channel(mine, lambda msg: self._message(c, msg))
        await c.link.open()
        c.link.send("init", self.init)
        reader = asyncio.create_task(c.link.run())
        exited = asyncio.create_task(c.proc.wait())
        watchdog = asyncio.create_task(self._watch(c, c.link, c.proc))
        try:
            await asyncio.wait([reader, exited, watchdog], return_when=asyncio.FIRST_COMPLETED)
        finally:
            watchdog.cancel()
        log.warning("worker %d (pid %d) is gone (exit status %s)", c.index, c.proc.pid, c.proc.returncode)

    @staticmethod
    async def _watch(c: _Child, link: Channel, proc: asyncio.subprocess.Process) -> None:
        """Return once the worker has left a question unanswered for ``_HUNG`` seconds, having killed it."""
        while True:
            await asyncio.sleep(_PING_EVERY)
            try:
                await asyncio.wait_for(link.call("ping"), _HUNG)
            except LinkError:
                return  # gone: the reader ends too
            except TimeoutError:
                log.error("worker %d (pid %d) has not answered for %.0f s: killing it (its connections are "
                          "closed) and starting another", c.index, proc.pid, _HUNG)
                if proc.returncode is None:
                    proc.kill()
                return

    async def _end(self, c: _Child) -> None:
        c.ready = False
        c.handed = 0  # what it held died with it
        self._interrupted(c)
        for t in list(c.tasks):
            t.cancel()
        if c.link is not None:
            c.link.close()
            c.link = None
        if c.fds is not None:
            c.fds.close()
            c.fds = None
        proc, c.proc = c.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 2)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _fairness(self) -> Fairness:
        fairness = self.enforcer.addons.get("fairness")  # type: ignore[no-untyped-call]
        assert isinstance(fairness, Fairness)
        return fairness

    def _gave(self, c: _Child, key: str, n: int = 1) -> None:
        n = min(n, c.conns.get(key, 0))  # never more than it took
        for _ in range(n):
            self._fairness().give(key)
        if (left := c.conns.pop(key, 0) - n) > 0:
            c.conns[key] = left

    def _interrupted(self, c: _Child) -> None:
        """The rows of requests the worker had begun and never finished: they may have reached the upstream,
        what came back is unknown (as the journal's replay says of a daemon killed mid-request). The connections
        it counted against their sandboxes' caps died with it: they are given back."""
        for seq, row in sorted(c.open.items()):
            row.reason = f"{row.reason}; {_GONE}".lstrip("; ")
            try:
                self.store.submit(row)
            except StoreFull as e:
                log.error("traffic row %s of worker %d lost: %s", seq, c.index, e)
        c.open.clear()
        for key, n in list(c.conns.items()):  # its connections died with it
            self._gave(c, key, n)

    # -- what a worker asks ---------------------------------------------------------------------------------
    def _message(self, c: _Child, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "submit":
            c.rows += 1
            c.open.pop(msg[1].seq, None)
            try:
                self.store.submit(msg[1])
            except StoreFull as e:
                log.error("traffic row %s of worker %d lost: %s", msg[1].seq, c.index, e)
        elif kind == "give_conn":
            self._gave(c, str(msg[1]))
        elif kind == "closed":
            c.handed = max(0, c.handed - 1)
        elif kind == "refused":  # requests it refused as unrecordable: counted with the daemon's own
            self.store.refused += int(msg[1])
        elif kind == "call":
            self._call(c, msg[1], str(msg[2]), msg[3])
        elif kind == "ready":
            c.ready = True
            self._push(c)
            log.info("worker %d ready (pid %s)", c.index, msg[1])

    def _call(self, c: _Child, n: int, name: str, args: tuple[Any, ...]) -> None:
        link = c.link
        assert link is not None
        try:
            if name == "begin":
                value: Any = self.store.begin(args[0])
                c.open[value] = args[0]
                c.requests += 1
            elif name == "origin":
                value = self.state.origin_of(str(args[0]), int(args[1]))
            elif name == "take_conn":
                if value := self._fairness().take(str(args[0])):
                    c.conns[str(args[0])] = c.conns.get(str(args[0]), 0) + 1
            elif name == "admit_gateway":
                value = self.state.limiter.admit_gateway(str(args[0]))
            elif name == "admit_action":
                value = self.state.limiter.admit_action(str(args[0]), str(args[1]))
            elif name == "hold":
                if not isinstance(args[0], Held):
                    raise LinkError(f"a hold asks for a Held, not {type(args[0]).__name__}")
                c.holds += 1
                self._spawn(c, n, args[0])
                return
            else:
                raise LinkError(f"unknown call {name!r}")
        except Exception as e:  # noqa: BLE001 - the worker refuses the request with this reason
            link.reply(n, False, str(e) if isinstance(e, (StoreFull, LinkError)) else f"{type(e).__name__}: {e}")
            return
        link.reply(n, True, value)

    def _spawn(self, c: _Child, n: int, what: Held) -> None:
        """Hold a worker's request in this daemon's queue, counted with the daemon enforcer's own holds per
        sandbox; the answer goes back as plain values."""
        approvals = self.enforcer.addons.get("approvals")  # type: ignore[no-untyped-call]
        assert isinstance(approvals, Approvals)
        link = c.link
        assert link is not None

        async def answer() -> None:
            try:
                link.reply(n, True, (await hold(self.state, approvals.held, what)).as_dict())
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.exception("hold for worker %d failed", c.index)
                link.reply(n, False, f"{type(e).__name__}: {e}")

        task = asyncio.create_task(answer())
        c.tasks.add(task)
        task.add_done_callback(c.tasks.discard)


def pool_init(confdir: str, upstream_ca: str | None, resolve: Any) -> dict[str, Any]:
    """What a worker needs to start: the CA directory, the upstream trust, the upstream name overrides."""
    return {"confdir": confdir, "upstream_ca": upstream_ca, "resolve": dict(resolve)}

