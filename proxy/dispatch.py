"""The enforcer's addon manager: mitmproxy's, with each event's handlers looked up once instead of per event.

mitmproxy's AddonManager answers every event (a connection opened, request headers read, a response, ...) by
walking the whole chain: for each addon a coroutine, a ``safecall`` context manager, two generators, a
``getattr`` and the hook's arguments rebuilt with ``dataclasses.fields``; and after each flow event it does it
all again for ``update``, which nothing in the enforcer handles. With the enforcer's ~25 addons that was some
200 addon visits per request, most of them finding no handler: ~10% of the daemon's time on the request path.

Here the handlers of an event name are resolved once, in chain order, and kept until the chain changes
(``register``, ``remove``, ``clear``); an event's arguments are built once. What a handler sees is unchanged:
the same handlers in the same order, awaited in turn; ``AddonHalt`` stops the event; an exception is logged and
ends that addon's part of the event, the next addon still runs (mitmproxy's ``safecall``; our enforcement
addons catch everything themselves and answer 403, see ``responses.fail_closed``). Hooks are resolved by
attribute when first dispatched after a change, so an addon must not grow or lose a hook method afterwards.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable
from typing import Any

from mitmproxy import exceptions, hooks
from mitmproxy.addonmanager import AddonManager, traverse
from mitmproxy.flow import Flow

__all__ = ["Dispatch"]

log = logging.getLogger("trustfence.enforcer")

Handler = tuple[Any, Callable[..., Any]]  # (the chain's top-level addon, one of its or its children's hooks)


class Dispatch(AddonManager):
    """An AddonManager that dispatches from a table of handlers per event name."""

    def __init__(self, master: Any) -> None:
        super().__init__(master)
        self._table: dict[str, list[Handler]] = {}

    def register(self, addon: Any) -> Any:
        self._table.clear()
        return super().register(addon)

    def remove(self, addon: Any) -> None:
        super().remove(addon)
        self._table.clear()

    def clear(self) -> None:
        super().clear()
        self._table.clear()

    def handlers(self, name: str) -> list[Handler]:
        """The hooks called ``name`` in chain order (children after their parent), each with its top-level addon."""
        found = self._table.get(name)
        if found is None:
            found = []
            for top in self.chain:
                for a in traverse([top]):
                    func = getattr(a, name, None)
                    if not func or isinstance(func, types.ModuleType):
                        continue  # a module imported under a hook's name is not a hook (as mitmproxy skips it)
                    if not callable(func):
                        raise exceptions.AddonManagerError(f"Addon handler {name} ({a}) not callable")
                    found.append((top, func))
            self._table[name] = found
        return found

    async def trigger_event(self, event: hooks.Hook) -> None:
        found = self.handlers(event.name)
        if not found:
            return
        args = event.args()
        failed = None  # the top-level addon whose handler raised: the rest of its part of this event is skipped
        for top, func in found:
            if top is failed:
                continue
            try:
                res = func(*args)
                if res is not None and inspect.isawaitable(res):
                    await res
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception as e:  # noqa: BLE001 - mitmproxy's safecall: logged, and the next addon runs
                log.error("Addon error: %s", e, exc_info=True)
                failed = top

    async def handle_lifecycle(self, event: hooks.Hook) -> None:
        await self.trigger_event(event)
        if self.handlers("update"):  # mitmproxy follows every flow event with ``update``; none of ours wants it
            message = event.args()[0]
            if isinstance(message, Flow):
                await self.trigger_event(hooks.UpdateHook([message]))

