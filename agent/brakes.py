"""The daemon's side of the kill switch: validate a request, persist the switches, apply them at once.

``tf kill-switch activate`` is persisted first (root 0600, written atomically), then swapped into the
enforcer's state (new requests in the scope get 403 from then on) and finally the live connections in the
scope are closed. A daemon that starts reads the file back, so a restart keeps the brakes on; a file that
does not parse stops the start (exit 2) rather than silently releasing them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trustfence.agent.config import ConfigError
from trustfence.agent.files import write_private
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.switches import Scope, Switch, Switches, parse_scope

__all__ = ["BrakeError", "KillSwitches", "load_switches"]

log = logging.getLogger("trustfence.daemon")

REASON_MAX = 500


class BrakeError(ValueError):
    """A kill switch request that cannot be carried out; ``code`` is the CLI's exit code (2 usage, 1 no-op)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def load_switches(path: Path) -> Switches:
    """The persisted switches (none when there is no file); raises ConfigError when the file is unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Switches()
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None
    try:
        return Switches.loads(data)
    except ValueError as e:
        raise ConfigError(path, None, f"{e}; fix the file, or delete it to release every kill switch") from None


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise BrakeError("a reason is required: --reason 'what happened' (it is shown to every refused request)")
    if len(reason) > REASON_MAX:
        raise BrakeError(f"the reason is {len(reason)} characters; at most {REASON_MAX}")
    return reason


class KillSwitches:
    """The active switches of one daemon: ``cut`` closes the live connections a new switch covers."""

    def __init__(self, path: Path, state: EnforcerState, cut: Callable[[Switch], int]) -> None:
        self.path, self.state, self.cut = path, state, cut

    def activate(self, scope: str, reason: str, by: str, gateways: Iterable[str],
                 connectors: Iterable[str]) -> dict[str, Any]:
        """Stop ``scope``; gateway and connector names must be among the known ones."""
        switch = Switch(self._known(scope, gateways, connectors), _reason(reason),
                        datetime.now(timezone.utc).isoformat(timespec="seconds"), by)
        switches = self.state.switches.with_switch(switch)
        write_private(self.path, switches.dumps())  # on disk before it takes effect: a crash keeps it on
        self.state.switches = switches
        closed = self.cut(switch)
        # held requests were among the connections just closed; their approvals can no longer release anything
        self.state.approvals.cancel(lambda a: switch.scope.covers(a.gateway, a.connector), switch.describe())
        log.warning("%s activated by %s; %d live connection(s) closed", switch.describe(), by or "?", closed)
        return {"scope": str(switch.scope), "reason": switch.reason, "since": switch.since, "closed": closed}

    def deactivate(self, scope: str, reason: str, by: str) -> dict[str, Any]:
        why = _reason(reason)
        try:
            target = parse_scope(scope)
        except ValueError as e:
            raise BrakeError(str(e)) from None
        if self.state.switches.get(target) is None:
            active = ", ".join(str(s.scope) for s in self.state.switches.active) or "none"
            raise BrakeError(f"no kill switch is active for {target} (active: {active})", code=1)
        switches = self.state.switches.without(target)
        write_private(self.path, switches.dumps())
        self.state.switches = switches
        log.warning("kill switch (%s) deactivated by %s: %s", target, by or "?", why)
        return {"scope": str(target), "active": switches.to_json()}

    def status(self) -> dict[str, Any]:
        return {"kill_switches": self.state.switches.to_json()}

    @staticmethod
    def _known(text: str, gateways: Iterable[str], connectors: Iterable[str]) -> Scope:
        try:
            scope = parse_scope(text)
        except ValueError as e:
            raise BrakeError(str(e)) from None
        if scope.kind == "connector" and scope.name not in (known := sorted(set(connectors))):
            raise BrakeError(f"unknown connector {scope.name!r}; known: {', '.join(known) or 'none configured'}")
        if scope.kind == "gateway" and scope.name not in (known := sorted(set(gateways))):
            raise BrakeError(f"unknown gateway {scope.name!r}; known: {', '.join(known) or 'none'} (a gateway is "
                             "known while it runs or once permissions.toml or config.toml names it)")
        return scope
