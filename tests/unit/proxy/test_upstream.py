"""The enforcer's upstream name overrides, on a real event loop (no network: literals and localhost only)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from trustfence.proxy.upstream import NotPublic, install_resolver


def resolve(overrides: dict[str, tuple[str, int | None]], host: str, port: int, **kw: Any) -> list[Any]:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        install_resolver(loop, overrides)
        return list(await loop.getaddrinfo(host, port, **kw))

    return asyncio.run(main())


def test_a_name_mapped_to_an_address_resolves_to_it_with_the_mapped_port() -> None:
    got = resolve({"api.github.com": ("10.202.7.2", 8443)}, "API.github.com.", 443, type=socket.SOCK_STREAM)
    assert {(a[0], a[4]) for a in got} == {(socket.AF_INET, ("10.202.7.2", 8443))}


def test_a_mapped_address_keeps_the_dialled_port_when_none_is_given() -> None:
    got = resolve({"api.github.com": ("10.202.7.2", None)}, "api.github.com", 443, type=socket.SOCK_STREAM)
    assert [a[4] for a in got] == [("10.202.7.2", 443)]


def test_a_mapped_address_of_another_family_than_asked_is_an_error_not_a_silent_answer() -> None:
    with pytest.raises(socket.gaierror):
        resolve({"api.github.com": ("10.202.7.2", None)}, "api.github.com", 443, family=socket.AF_INET6)


def test_a_name_mapped_to_a_name_is_resolved_as_usual() -> None:
    got = resolve({"api.github.com": ("localhost", 9000)}, "api.github.com", 443, family=socket.AF_INET,
                  type=socket.SOCK_STREAM)
    assert [a[4] for a in got] == [("127.0.0.1", 9000)]


def test_an_unmapped_name_that_resolves_to_loopback_is_refused() -> None:
    with pytest.raises(NotPublic):
        resolve({}, "localhost", 443, family=socket.AF_INET)
