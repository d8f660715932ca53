"""A worker's addons: the same order as the daemon's, the daemon-owned steps remote, found by the same names."""

from __future__ import annotations

import socket

from mitmproxy.addonmanager import _get_name
from trustfence.proxy.master import enforcer_addons
from trustfence.proxy.remote import (
    RemoteActionRateLimit,
    RemoteApprovals,
    RemoteFairness,
    RemoteIdentify,
    RemoteOrigin,
    RemoteRateLimit,
    RemoteRecord,
    RemoteStore,
    replace_remote,
)
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.workerlink import Channel
from trustfence.store import StoreFull


def test_the_order_and_names_stay_and_only_the_daemon_owned_steps_change() -> None:
    here, there = socket.socketpair()
    try:
        state = EnforcerState(store=None)
        link = Channel(here, lambda msg: None)
        store = RemoteStore(link)
        local = enforcer_addons(state)
        remote = replace_remote(enforcer_addons(state), state, link, store)
        assert isinstance(remote[0], RemoteOrigin)  # before Fairness: its rows name who opened the connection
        assert [_get_name(a) for a in remote[1:]] == [_get_name(a) for a in local]
        swapped = {type(a) for a in remote[1:]} - {type(a) for a in local}
        assert swapped == {RemoteFairness, RemoteIdentify, RemoteRateLimit, RemoteActionRateLimit, RemoteRecord,
                           RemoteApprovals}
    finally:
        here.close()
        there.close()


def test_a_remote_store_never_journals_by_itself() -> None:
    here, there = socket.socketpair()
    try:
        store = RemoteStore(Channel(here, lambda msg: None))
        try:
            store.begin(None)  # type: ignore[arg-type]
        except StoreFull as e:
            assert "traffic log unavailable" in str(e)
        else:
            raise AssertionError("begin must refuse")
        store.why = "the traffic write queue is full"
        assert store.unavailable() == "the traffic write queue is full"
    finally:
        here.close()
        there.close()
