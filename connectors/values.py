"""The plain values every connector shares: the request view it reads and the Action it emits.

They live apart from ``base`` so that the shared classifiers (``protocols``) can build Actions without
importing the ``Connector`` class that calls them; ``base`` re-exports both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = ["Action", "RequestView", "Risk"]

Risk = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True, slots=True)
class RequestView:
    """What a connector may look at: the canonical destination and the request, already decoded.

    ``host`` is the canonical host (CONNECT authority, SNI and Host agreed), lower case, no port.
    ``path`` excludes the query string; ``query`` holds the decoded query pairs.
    ``headers`` keys are lower case. ``body`` is the raw request body (may be empty), at most ``INSPECT_BYTES``;
    ``body_complete`` is False when it was cut there.
    """

    method: str
    scheme: str
    host: str
    port: int
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_complete: bool = True


_FRESH_DICT: Mapping[str, object] = MappingProxyType({})
"""Marks ``params`` left out of ``Action(...)``: each such Action then gets a dict of its own."""


@dataclass(frozen=True, slots=True, init=False)
class Action:
    """A structured action: what the request would do, in the words permissions and policies use.

    ``name`` is the full action (``github.pr.merge``); ``connector`` the configured connector's name
    (``github``, or the name given to a generic connector); ``params`` the values extracted from path,
    query and body that policies can test (``owner``, ``repo``, ``number`` ...); ``unavailable`` names the
    parameters the route wanted but could not read (body malformed or beyond the inspection bound): a policy
    condition on one of them fails closed.
    """

    name: str
    connector: str
    risk: Risk = "medium"
    params: Mapping[str, object] = field(default_factory=dict)
    unavailable: frozenset[str] = frozenset()

    def __init__(self, name: str, connector: str, risk: Risk = "medium",
                 params: Mapping[str, object] = _FRESH_DICT, unavailable: frozenset[str] = frozenset()) -> None:
        # Every request builds one, so the constructor is on the classify path. The generated frozen __init__
        # writes each slot through object.__setattr__; writing through the slot descriptors directly does the
        # same at half the cost, and the instance stays frozen afterwards.
        _set_name(self, name)
        _set_connector(self, connector)
        _set_risk(self, risk)
        _set_params(self, {} if params is _FRESH_DICT else params)
        _set_unavailable(self, unavailable)


def _slot_setter(name: str) -> Callable[[Action, object], None]:
    setter: Callable[[Action, object], None] = Action.__dict__[name].__set__
    return setter


_set_name = _slot_setter("name")
_set_connector = _slot_setter("connector")
_set_risk = _slot_setter("risk")
_set_params = _slot_setter("params")
_set_unavailable = _slot_setter("unavailable")
