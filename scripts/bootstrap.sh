#!/usr/bin/env bash
# Prepares a fresh Debian 12 / Ubuntu 24.04 host (as root) to run TrustFence from this checkout:
# system packages, kernel headers for bcc, a venv on a Python >= 3.12, bcc linked into it, the project
# installed with its dev extras. Every step checks first, so a second run with nothing changed is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TF_VENV:-.venv}

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (sudo make ...): it installs packages and creates namespaces"

# --- system packages -------------------------------------------------------------------------------
PKGS=(nftables iproute2 python3-bpfcc python3 python3-requests util-linux curl ca-certificates socat iputils-ping
      dnsutils nodejs)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# The suite runs `vagrant validate` on vagrant/Vagrantfile: Debian's vagrant, without recommends (no
# VirtualBox or libvirt; ~35 s once). Skipped where the distribution has none, and inside the test VM.
if [ "${TF_NO_VAGRANT:-0}" != 1 ] && ! command -v vagrant >/dev/null 2>&1 && apt-cache show vagrant >/dev/null 2>&1
then
  say "installing vagrant (to validate vagrant/Vagrantfile)"
  apt_install vagrant
fi

# Debian's chromium drives the dashboard's browser tests (Playwright never downloads a browser here). Optional:
# where it cannot be installed those tests skip and say why.
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (dashboard browser tests)"
  apt_install chromium || say "chromium could not be installed: the dashboard browser tests will skip"
fi

# The real-client suite (tests/system/test_real_clients.py) runs each language's own client: a JDK (javac, java),
# Go, Node, wget and git. Optional: a tool that cannot be installed makes its tests skip and say why.
for tool_pkg in javac:default-jdk-headless go:golang-go node:nodejs wget:wget git:git; do
  tool=${tool_pkg%%:*} p=${tool_pkg#*:}
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "installing $p (real-client tests)"
    apt_install "$p" || say "$p could not be installed: the real-client tests that need $tool will skip"
  fi
done

# bench/workers.py loads the enforcer with wrk (as the agent) against nginx (as the upstream): C programs, so
# the 2 cores go to what is measured. Only nginx's binary is used: its packaged service is kept from starting.
if ! command -v wrk >/dev/null 2>&1 || [ ! -x /usr/sbin/nginx ]; then
  say "installing wrk and nginx-light (bench/workers.py)"
  norc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && norc=1
  fi
  ok=1
  apt_install wrk nginx-light || ok=0
  if [ "$norc" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$ok" -eq 1 ] || die "cannot install wrk and nginx-light (bench/workers.py needs them)"
fi

# --- kernel headers (bcc compiles its programs against them) ----------------------------------------
KREL=$(uname -r)
if [ ! -e "/lib/modules/$KREL/build/include" ]; then
  if apt-cache show "linux-headers-$KREL" >/dev/null 2>&1; then
    say "installing linux-headers-$KREL"
    apt_install "linux-headers-$KREL"
  else
    # No headers package for this kernel (a custom VM kernel): use the distribution's generic headers
    # and link them where bcc looks. BCC_KERNEL_SOURCE alone is not honoured for every lookup.
    arch=$(dpkg --print-architecture)
    say "no headers package for $KREL; using linux-headers-$arch"
    apt_install "linux-headers-$arch"
    hdr=$(ls -d /usr/src/linux-headers-*-"$arch" 2>/dev/null | sort -V | tail -n 1)
    common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -n 1)
    [ -n "$hdr" ] || die "linux-headers-$arch installed no /usr/src/linux-headers-*-$arch"
    mkdir -p "/lib/modules/$KREL"
    ln -sfn "$hdr" "/lib/modules/$KREL/build"
    [ -n "$common" ] && ln -sfn "$common" "/lib/modules/$KREL/source"
  fi
fi

# --- a Python >= 3.12 --------------------------------------------------------------------------------
ok_py() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
find_python() {
  local c
  for c in ${TF_PYTHON:-} python3.13 python3.12 /usr/bin/python3.13 /usr/bin/python3.12 python3; do
    if command -v "$c" >/dev/null 2>&1 && ok_py "$(command -v "$c")"; then command -v "$c"; return; fi
  done
  # pyenv shims refuse to run unless selected: look at the interpreters themselves.
  local root; root=$( (command -v pyenv >/dev/null && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for c in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
    if ok_py "$c"; then echo "$c"; return; fi
  done
  if [ -f /etc/os-release ] && grep -q '^ID=ubuntu' /etc/os-release; then
    apt_install python3.12 python3.12-venv && { echo /usr/bin/python3.12; return; }
  fi
  return 1
}

if [ ! -x "$VENV/bin/python" ] || ! ok_py "$VENV/bin/python"; then
  PY=$(find_python) || die "no Python >= 3.12 found; install one or set TF_PYTHON=/path/to/python3.12"
  say "creating $VENV with $PY"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi

# bcc is not on PyPI: link only Debian's bcc package (pure Python over libbcc) into the venv.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -d /usr/lib/python3/dist-packages/bcc ] || die "python3-bpfcc did not install /usr/lib/python3/dist-packages/bcc"
ln -sfn /usr/lib/python3/dist-packages/bcc "$site/bcc"

# --- the project ---------------------------------------------------------------------------------------
stamp="$VENV/.trustfence-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing trustfence and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # One resolve with a constraints file: mitmproxy, fastapi, uvicorn, httpx and duckdb fight over
  # h11/typing-extensions pins when installed one after another.
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev]'
  echo "$want" > "$stamp"
fi
# Byte code for the project's own modules, as an installed package has it: with PYTHONDONTWRITEBYTECODE set
# (as on these machines) every `tf` command and the daemon would compile each of them from source at start,
# over a second for the CLI. A stale file is harmless: Python checks it against the source's mtime.
"$VENV/bin/python" -m compileall -q -j0 -x '/(\.venv|build|\.git|node_modules)/' . >/dev/null
# --- the official SDKs for agents in system tests ------------------------------------------------------
# Agents run as an unprivileged user on Debian's /usr/bin/python3 (root's interpreters are unreadable to
# them), so the SDKs go to a world-readable directory, as wheels for that interpreter.
SDKS=build/agent-sdks
sdk_want=$(sha256sum tests/agent-sdks.txt | cut -d' ' -f1)
if [ ! -f "$SDKS/.installed" ] || [ "$(cat "$SDKS/.installed")" != "$sdk_want" ]; then
  say "installing the agent SDKs into $SDKS"
  pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  rm -rf "$SDKS"; mkdir -p "$SDKS"
  "$VENV/bin/python" -m pip install --ignore-installed --target "$SDKS" --python-version "$pyver" \
    --implementation cp --only-binary=:all: -r tests/agent-sdks.txt > build/agent-sdks.log 2>&1 \
    || { cat build/agent-sdks.log >&2; die "installing the agent SDKs failed"; }
  chmod -R a+rX build "$SDKS"
  echo "$sdk_want" > "$SDKS/.installed"
fi
# --- CrewAI, opt-in (TF_CREWAI=1): it conflicts with the venv's pins, so it lives apart ------------------
CREW=build/crewai
crew_want=$(sha256sum tests/crewai.txt | cut -d' ' -f1)
if [ "${TF_CREWAI:-0}" = 1 ] && { [ ! -f "$CREW/.installed" ] || [ "$(cat "$CREW/.installed")" != "$crew_want" ]; }; then
  say "installing crewai into $CREW (the advisory SDK's CrewAI test; about 1 GB)"
  rm -rf "$CREW"; mkdir -p "$CREW"
  "$VENV/bin/python" -m pip install --target "$CREW" --only-binary=:all: -r tests/crewai.txt > build/crewai.log 2>&1 \
    || { cat build/crewai.log >&2; die "installing crewai failed"; }
  echo "$crew_want" > "$CREW/.installed"
fi
say "ready: $VENV ($("$VENV/bin/python" -V))"
