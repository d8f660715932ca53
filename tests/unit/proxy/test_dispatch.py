"""The enforcer's dispatch table calls exactly what mitmproxy's own AddonManager calls, in the same order."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mitmproxy import exceptions, options
from mitmproxy.addonmanager import AddonManager
from mitmproxy.master import Master
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import tflow

from trustfence.proxy.dispatch import Dispatch


class Seen:
    """Records every hook call of the addons below, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class Plain:
    def __init__(self, seen: Seen, name: str) -> None:
        self.seen, self.name = seen, name

    def request(self, flow: Any) -> None:
        self.seen.calls.append(f"{self.name}.request")

    def response(self, flow: Any) -> None:
        self.seen.calls.append(f"{self.name}.response")


class Async(Plain):
    async def request(self, flow: Any) -> None:
        await asyncio.sleep(0)
        self.seen.calls.append(f"{self.name}.request(async)")


class Raises(Plain):
    def request(self, flow: Any) -> None:
        self.seen.calls.append(f"{self.name}.request(raises)")
        raise ValueError("boom")


class Halts(Plain):
    def response(self, flow: Any) -> None:
        self.seen.calls.append(f"{self.name}.response(halts)")
        raise exceptions.AddonHalt


class Parent(Raises):
    """Its child is skipped for the event its own handler raised on (mitmproxy's safecall per top-level addon)."""

    def __init__(self, seen: Seen, name: str) -> None:
        super().__init__(seen, name)
        self.addons = [Plain(seen, f"{name}-child")]


class Updates:
    name = "updates"

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def update(self, flows: list[Any]) -> None:
        self.seen.calls.append(f"update({len(flows)})")


def chain(seen: Seen) -> list[Any]:
    return [Plain(seen, "a"), Async(seen, "b"), Raises(seen, "c"), Parent(seen, "p"), Halts(seen, "h"),
            Plain(seen, "z")]


async def calls_with(manager: type[AddonManager], extra: list[Any] | None = None) -> list[str]:
    master = Master(options.Options(), event_loop=asyncio.get_running_loop())
    master.addons = manager(master)
    seen = Seen()
    master.addons.add(*chain(seen), *([] if extra is None else [e(seen) for e in extra]))
    f = tflow.tflow(resp=True)
    await master.addons.handle_lifecycle(HttpRequestHook(f))
    await master.addons.handle_lifecycle(HttpResponseHook(f))
    master._legacy_log_events.uninstall()  # noqa: SLF001 - the next Master in this process installs its own
    return seen.calls


async def both(extra: list[Any] | None) -> tuple[list[str], list[str]]:
    return await calls_with(Dispatch, extra), await calls_with(AddonManager, extra)


@pytest.mark.parametrize("extra", [None, [Updates]])
def test_same_calls_in_same_order_as_mitmproxy(extra: list[Any] | None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        ours, theirs = asyncio.run(both(extra))
    assert ours == theirs
    # A raising handler is logged and the next top-level addon still runs; a halt ends the event.
    assert ours[:7] == ["a.request", "b.request(async)", "c.request(raises)", "p.request(raises)", "h.request",
                        "z.request"] + (["update(1)"] if extra else ["a.response"])
    assert ours[-1] == ("update(1)" if extra else "h.response(halts)")  # a halt ends the event: z is not told
    assert sum("Addon error: boom" in r.getMessage() for r in caplog.records) == 4  # twice per manager


def test_an_addon_added_later_is_dispatched_to() -> None:
    asyncio.run(added_later())


async def added_later() -> None:
    master = Master(options.Options(), event_loop=asyncio.get_running_loop())
    master.addons = Dispatch(master)
    seen = Seen()
    master.addons.add(Plain(seen, "a"))
    f = tflow.tflow()
    await master.addons.trigger_event(HttpRequestHook(f))
    master.addons.add(Plain(seen, "b"))
    await master.addons.trigger_event(HttpRequestHook(f))
    master.addons.remove(master.addons.chain[0])
    await master.addons.trigger_event(HttpRequestHook(f))
    master._legacy_log_events.uninstall()  # noqa: SLF001 - the next Master in this process installs its own
    assert seen.calls == ["a.request", "a.request", "b.request", "b.request"]
