"""The demo agent: an ordinary program that talks to the GitHub API, knowing nothing of TrustFence.

Runs under ``tf run`` with Debian's /usr/bin/python3 and the standard library only. Exit code 0 means every
request was treated as the demo expects.
"""

import json
import os
import socket
import sys
import urllib.error
import urllib.request

API = "https://api.github.com"
failures: list[str] = []


def call(opener: urllib.request.OpenerDirector, method: str, path: str,
         body: object = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    token = os.environ.get("GITHUB_TOKEN", "")  # what tf run gave it: a placeholder, not the real key
    req = urllib.request.Request(API + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with opener.open(req, timeout=15) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def step(title: str, opener: urllib.request.OpenerDirector, method: str, path: str, want: bool,
         body: object = None) -> None:
    status, headers, payload = call(opener, method, path, body)
    action = headers.get("X-TrustFence-Action", "-")
    print(f"  {method:6} {path:34} -> {status} {headers.get('X-TrustFence-Decision', '?'):8} {action}")
    if status == 403:
        deny = json.loads(payload)
        print(f"         reason: {deny['reason']}")
        print(f"         allow:  {deny['allow_with']}")
    if (status < 400) != want:
        failures.append(f"{title}: got {status}")
    if status < 400 and payload.startswith(b"{"):  # the fake API echoes what it received
        seen = json.loads(payload).get("headers", {}).get("authorization", "")
        print(f"         the API received Authorization: {seen}  (the agent holds {os.environ.get('GITHUB_TOKEN', '')[:12]}...)")
        if os.environ.get("GITHUB_TOKEN", "-") in seen:
            failures.append(f"{title}: the placeholder reached the API instead of the real key")


proxied = urllib.request.build_opener()  # honours HTTPS_PROXY like most SDKs
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignores every proxy variable

print("1. A proxy-aware client (HTTPS_PROXY):")
step("create PR", proxied, "POST", "/repos/acme/widgets/pulls", True, {"title": "Fix", "head": "fix", "base": "main"})
step("delete repo", proxied, "DELETE", "/repos/acme/widgets", False)
print("2. A proxy-unaware client (no proxy at all, straight to the resolved address):")
step("list PRs", direct, "GET", "/repos/acme/widgets/pulls", True)
step("merge PR", direct, "PUT", "/repos/acme/widgets/pulls/1/merge", False, {})
print("3. Around HTTP entirely:")
for host, port in (("api.github.com", 22), ("example.org", 443)):
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b"SSH-2.0-demo\r\n")
        got = s.recv(64)
        print(f"  raw TCP to {host}:{port} -> {'closed by the enforcer' if not got else repr(got)}")
        if got:
            failures.append(f"raw TCP to {host}:{port} got data")
    except socket.gaierror:
        print(f"  raw TCP to {host}:{port} -> no such name (the enforcer's DNS answers covered hosts only)")
    except OSError as e:
        print(f"  raw TCP to {host}:{port} -> refused ({e})")

if failures:
    print("UNEXPECTED:", "; ".join(failures))
    sys.exit(1)
print("All as expected: allowed went through with a key the agent never held, denied was stopped, nothing went "
      "around the enforcer.")
