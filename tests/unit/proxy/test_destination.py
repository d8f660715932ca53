"""The canonical destination: every name the client gave must agree, or the request is refused."""

from __future__ import annotations

from typing import Any

import pytest

from trustfence.proxy.destination import (
    Destination,
    DestinationError,
    canonical_destination,
    is_ip_literal,
    split_host,
)

AGREE: list[tuple[str, dict[str, Any], Destination]] = [
    ("sni only", {"port": 443, "sni": "api.github.com"}, Destination("api.github.com", 443)),
    ("host only", {"port": 80, "host_header": "example.com"}, Destination("example.com", 80)),
    ("url only", {"port": 80, "url_host": "example.com"}, Destination("example.com", 80)),
    ("sni and host, case differs", {"port": 443, "sni": "API.GitHub.com", "host_header": "api.github.COM"},
     Destination("api.github.com", 443)),
    ("host with port", {"port": 443, "sni": "api.github.com", "host_header": "api.github.com:443"},
     Destination("api.github.com", 443)),
    ("host with trailing dot", {"port": 443, "sni": "api.github.com", "host_header": "api.github.com."},
     Destination("api.github.com", 443)),
    ("host with trailing dot and port", {"port": 443, "sni": "api.github.com.", "host_header": "API.github.com.:443"},
     Destination("api.github.com", 443)),
    ("connect, sni, host agree", {"port": 8443, "connect_authority": "ghe.corp:8443", "sni": "ghe.corp",
                                  "host_header": "GHE.corp:8443"}, Destination("ghe.corp", 8443)),
    ("connect and absolute url", {"port": 80, "connect_authority": "example.com:80", "url_host": "Example.com"},
     Destination("example.com", 80)),
    ("empty names are ignored", {"port": 443, "sni": "", "host_header": "example.com", "connect_authority": None},
     Destination("example.com", 443)),
    ("port is the given one, not the Host's", {"port": 443, "host_header": "example.com:8443"},
     Destination("example.com", 443)),
    ("ipv6 literal", {"port": 443, "connect_authority": "[::1]:443", "host_header": "[::1]"},
     Destination("::1", 443)),
]


@pytest.mark.parametrize(("kwargs", "expected"), [a[1:] for a in AGREE], ids=[a[0] for a in AGREE])
def test_names_agree(kwargs: dict[str, Any], expected: Destination) -> None:
    assert canonical_destination(**kwargs) == expected


DISAGREE: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("sni vs host", {"sni": "api.github.com", "host_header": "evil.example"},
     ("TLS SNI", "Host header", "api.github.com", "evil.example")),
    ("connect vs host", {"connect_authority": "api.github.com:443", "host_header": "evil.example"},
     ("CONNECT authority", "Host header", "api.github.com", "evil.example")),
    ("connect vs sni", {"connect_authority": "api.github.com:443", "sni": "evil.example"},
     ("CONNECT authority", "TLS SNI")),
    ("host vs url", {"host_header": "a.example", "url_host": "b.example"}, ("Host header", "request URL")),
    ("subdomain is a different name", {"sni": "github.com", "host_header": "api.github.com"},
     ("TLS SNI", "Host header")),
    ("two agree, one differs", {"connect_authority": "a.example:443", "sni": "a.example", "host_header": "b.example"},
     ("Host header", "b.example")),
]


@pytest.mark.parametrize(("kwargs", "words"), [d[1:] for d in DISAGREE], ids=[d[0] for d in DISAGREE])
def test_names_disagree(kwargs: dict[str, Any], words: tuple[str, ...]) -> None:
    with pytest.raises(DestinationError, match="disagree") as ei:
        canonical_destination(port=443, **kwargs)
    for w in words:
        assert w in str(ei.value)


@pytest.mark.parametrize("kwargs", [{}, {"sni": None, "host_header": None}, {"sni": "", "host_header": ""}])
def test_no_names(kwargs: dict[str, Any]) -> None:
    with pytest.raises(DestinationError, match="no destination"):
        canonical_destination(port=443, **kwargs)


def test_destination_error_is_value_error() -> None:
    assert issubclass(DestinationError, ValueError)


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        ("[::1]:443", "::1"),
        ("[::1]", "::1"),
        ("[2001:db8::1]:8443", "2001:db8::1"),
        ("::1", "::1"),
        ("Host:8443", "host"),
        ("host.", "host"),
        ("host.:443", "host"),
        ("API.GitHub.COM", "api.github.com"),
        ("  example.com:80  ", "example.com"),
        ("1.2.3.4:80", "1.2.3.4"),
        ("example.com", "example.com"),
    ],
)
def test_split_host(authority: str, host: str) -> None:
    assert split_host(authority) == host


@pytest.mark.parametrize(
    ("host", "is_ip"),
    [
        ("1.2.3.4", True),
        ("::1", True),
        ("2001:db8::1", True),
        ("example.com", False),
        ("1.2.3", False),
        ("[::1]", False),
        ("1.2.3.4:80", False),
        ("", False),
        ("127.1", False),
        ("0x7f.0.0.1", False),
        ("1.2.3.4.", False),
        ("１.２.３.４", False),  # full-width digits: not what a socket would dial
        ("fe80::1%eth0", True),
        ("::ffff:10.0.0.1", True),
    ],
)
def test_is_ip_literal(host: str, is_ip: bool) -> None:
    assert is_ip_literal(host) is is_ip
