"""Integration fixtures: the real enforcer on 127.0.0.1 and a real fake HTTPS upstream on loopback."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from trustfence.connectors import ConnectorSet, build_connector
from trustfence.demo import upstream
from trustfence.policy import Permission, compile_policy
from trustfence.proxy import Enforcer, EnforcerState, Gateway
from trustfence.proxy.upstream import install_resolver
from trustfence.store import Store

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Upstream:
    port: int
    ca: Path
    log: Path

    def received(self) -> list[dict[str, Any]]:
        import json

        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake_upstream(tmp_path: Path) -> Iterator[Upstream]:
    ca, cert, key = upstream.make_test_pki(tmp_path / "pki", ["api.github.com", "internal.example", "github.com"])
    port = free_port()
    log = tmp_path / "upstream.jsonl"
    t = threading.Thread(target=upstream.serve, args=("127.0.0.1", port, cert, key, log), daemon=True)
    t.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            threading.Event().wait(0.05)
    yield Upstream(port, ca, log)


@dataclass
class RunningEnforcer:
    state: EnforcerState
    port: int
    store: Store
    loop: asyncio.AbstractEventLoop
    master: Enforcer | None = None

    def set_permissions(self, *perms: Permission) -> None:
        self.state.policy = compile_policy(perms)

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the enforcer's event loop (as the daemon's operations do) and return its result."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                done.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return done.result(10)

    def rows(self) -> list[dict[str, Any]]:
        """The traffic rows written so far, oldest first."""
        assert self.store.flush()
        return self.store.query("recent", limit=10_000)


@pytest.fixture
def enforcer(tmp_path: Path, fake_upstream: Upstream) -> Iterator[RunningEnforcer]:
    store = Store(tmp_path / "traffic.duckdb")
    state = EnforcerState(
        store=store,
        connectors=ConnectorSet([build_connector("github", "github"),
                                 build_connector("internal", "generic", ("internal.example",)),
                                 build_connector("local", "generic", ("localhost",))]),
    )
    state.gateways["127.0.0.1"] = Gateway("Bot", "test", "127.0.0.1", "127.0.0.1")
    state.open_ports["local"] = frozenset({fake_upstream.port})
    port = free_port()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            install_resolver(loop, {"api.github.com": ("127.0.0.1", fake_upstream.port),
                                    "internal.example": ("127.0.0.1", fake_upstream.port),
                                    "github.com": ("127.0.0.1", fake_upstream.port)})
            m = Enforcer(state, tmp_path / "ca", upstream_ca=fake_upstream.ca)
            holder["master"], holder["loop"] = m, loop
            task = asyncio.create_task(m.run())
            await m.started.wait()
            await m.listen("test", [f"regular@127.0.0.1:{port}"])
            ready.set()
            await task

        asyncio.run(main())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(20), "enforcer did not start"
    yield RunningEnforcer(state, port, store, holder["loop"], holder["master"])
    holder["master"].shutdown()
    t.join(10)
    store.close()
