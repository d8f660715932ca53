"""``host_service`` / ``sandbox_port`` of a connector: accepted forms, round trips, and every refusal with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.agent.config import Config, ConfigError, dump_config, parse_config
from trustfence.agent.hostservice import format_service, parse_service

PATH = Path("/etc/trustfence/config.toml")


def load(text: str) -> Config:
    return parse_config(text, PATH, env={})


def ollama(extra: str = "", service: str = "127.0.0.1:11434") -> str:
    return f'[connectors.ollama]\ntype = "openai"\nhost_service = "{service}"\n{extra}'


@pytest.mark.parametrize(("given", "canonical", "sandbox_port"), [
    ("127.0.0.1:11434", "127.0.0.1:11434", 11434),
    ("localhost:11434", "127.0.0.1:11434", 11434),   # what localhost means on the host, never a resolver's answer
    ("[::1]:8000", "[::1]:8000", 8000),
    ("127.0.0.2:80", "127.0.0.2:80", 80),
])
def test_accepted_forms(given: str, canonical: str, sandbox_port: int) -> None:
    c = load(ollama(service=given)).connectors[0]
    assert (c.host_service, c.sandbox_port) == (canonical, sandbox_port)


def test_sandbox_port_maps_another_loopback_port_to_the_service() -> None:
    c = load(ollama("sandbox_port = 9000\n")).connectors[0]
    assert (c.service, c.sandbox_port) == (("127.0.0.1", 11434), 9000)
    assert load(dump_config(load(ollama("sandbox_port = 9000\n")))).connectors == (c,)


def test_round_trip_omits_the_default_sandbox_port() -> None:
    cfg = load(ollama())
    text = dump_config(cfg)
    assert 'host_service = "127.0.0.1:11434"' in text and "sandbox_port" not in text
    assert load(text) == cfg


def test_a_host_service_is_found_by_name_never_by_host() -> None:
    cfg = load(ollama() + '\n[connectors.vllm]\ntype = "generic"\nhost_service = "127.0.0.1:8000"\n'
               '\n[connectors.openai]\ntype = "openai"\n')
    conns = cfg.connector_set()
    assert conns.by_name["ollama"].hosts == ("127.0.0.1",)  # what a credential for it is bound to
    assert conns.for_host("127.0.0.1") is None and conns.for_host("localhost") is None
    assert conns.for_host("api.openai.com") is conns.by_name["openai"]  # the cloud API keeps its own connector
    assert {p: c.name for p, c in cfg.host_services().items()} == {11434: "ollama", 8000: "vllm"}


def test_any_connector_type_can_stand_for_a_host_service() -> None:
    mcp = load('[connectors.tools]\ntype = "mcp"\nhost_service = "127.0.0.1:3000"\nurls = ["http://localhost:3000/mcp"]\n')
    assert mcp.connector_set().by_name["tools"].type_name == "mcp"
    gen = load('[connectors.side]\ntype = "generic"\nhost_service = "127.0.0.1:9090"\n')
    assert gen.connector_set().by_name["side"].hosts == ("127.0.0.1",)


@pytest.mark.parametrize(("text", "line", "reason"), [
    (ollama(service="192.0.2.10:11434"), 3, "neither a loopback address nor an address of this host"),
    (ollama(service="api.example.com:11434"), 3, "must name an IP address"),
    (ollama(service="127.0.0.1"), 3, "must be ADDRESS:PORT"),
    (ollama(service="127.0.0.1:0"), 3, "must be ADDRESS:PORT"),
    (ollama(service="127.0.0.1:70000"), 3, "must be ADDRESS:PORT"),
    (ollama(service="::1:11434"), 3, "written in brackets"),
    (ollama(service="0.0.0.0:11434"), 3, "is not a host address"),
    (ollama(service="[fe80::1]:11434"), 3, "is not a host address"),
    (ollama(service="224.0.0.1:11434"), 3, "is not a host address"),
    (ollama(service="10.201.0.1:11434"), 3, "sandbox subnet pool"),
    ('[connectors.ollama]\ntype = "openai"\nhost_service = 11434\n', 3, "must be a string"),
    (ollama("sandbox_port = 8081\n"), 4, "sandbox port 8081 is the enforcer's transparent_port"),
    (ollama(service="127.0.0.1:8080"), 3, "sandbox port 8080 is the enforcer's proxy_port"),
    (ollama("sandbox_port = 53\n"), 4, "the enforcer's dns_port"),
    (ollama('sandbox_port = "x"\n'), 4, "sandbox_port must be a port number"),
    (ollama("sandbox_port = 0\n"), 4, "sandbox_port must be a port number"),
    (ollama("sandbox_port = true\n"), 4, "sandbox_port must be a port number"),
    ('[connectors.ollama]\ntype = "openai"\nsandbox_port = 11434\n', 3, "give host_service too"),
    (ollama('domains = ["api.openai.com"]\n'), 4, "remove domains"),
    (ollama("ports = [8443]\n"), 4, "remove ports"),
    (ollama() + '\n[connectors.other]\ntype = "generic"\nhost_service = "127.0.0.1:9000"\nsandbox_port = 11434\n',
     8, "sandbox port 11434 is already claimed by connector ollama"),
    (ollama() + '\n[connectors.other]\ntype = "generic"\nhost_service = "[::1]:11434"\n', 7,
     "already claimed by connector ollama"),
])
def test_refused_with_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(text)
    assert str(e.value).startswith(f"{PATH}:{line}: [connectors."), str(e.value)
    assert reason in str(e.value)


def test_the_enforcer_ports_are_the_configured_ones() -> None:
    text = '[enforcer]\nproxy_port = 3128\n\n' + ollama(service="127.0.0.1:8080")
    assert load(text).connectors[0].sandbox_port == 8080  # 8080 is nobody's here
    with pytest.raises(ConfigError, match="enforcer's proxy_port"):
        load('[enforcer]\nproxy_port = 3128\n\n' + ollama("sandbox_port = 3128\n"))


def test_an_address_of_this_host_is_a_host_service() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: only the route's source address is chosen
        except OSError:
            pytest.skip("no route off this host")
        own = s.getsockname()[0]
    if own.startswith(("127.", "10.201.")):
        pytest.skip("this host has no address outside loopback and the pool")
    assert load(ollama(service=f"{own}:11434")).connectors[0].service == (own, 11434)


def test_parse_and_format_service() -> None:
    assert parse_service(" [::1]:1 ") == ("::1", 1)
    assert format_service("::1", 1) == "[::1]:1" and format_service("127.0.0.1", 2) == "127.0.0.1:2"
