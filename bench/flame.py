"""Where the daemon's time goes under load: py-spy samples while the latency bench runs, summarised as text.

``sampling(pid, out)`` runs ``py-spy record`` on the daemon (and any process it starts) for the duration of a
``with`` block, without pausing it (``--nonblocking``), and writes raw collapsed stacks to ``out``: one line per
distinct stack, ``frame;frame;... count``, which any flame-graph tool reads. ``summary(out)`` prints what a
commit message that removes a cost needs: the busy share of each thread, the functions that cost the most on
their own (self) and with what they call (inclusive), and the inclusive share of each TrustFence module.

    .venv/bin/python bench/flame.py STACKS   # summarise a file written by latency.py --profile
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["sampling", "summary"]

PY_SPY = Path(sys.executable).parent / "py-spy"
RATE = 250  # samples a second
HOT = ("trustfence/proxy/", "trustfence/store/", "trustfence/connectors/", "trustfence/policy/",
       "trustfence/vault/", "trustfence/bpf/")  # what a request runs through (not the daemon's main())
HOOKS = tuple(f"({p}" for p in (*HOT, "mitmproxy/addons/", "mitmproxy/addonmanager.py"))
PRODUCT = ("agent/", "bpf/", "connectors/", "dashboard/", "demo/", "policy/", "proxy/", "store/", "vault/")
FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


@contextmanager
def sampling(pid: int, out: Path | None, gil: bool = False) -> Iterator[None]:
    """Sample ``pid`` with py-spy into ``out`` while the block runs (nothing when ``out`` is None). Threads
    waiting (in a poll, on a lock or a queue) are not sampled; with ``gil``, only the thread holding the GIL."""
    if out is None:
        yield
        return
    p = subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", "--threads",
                          *(["--gil"] if gil else []), "--nonblocking", "--rate", str(RATE), "--format", "raw",
                          "--output", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        p.send_signal(signal.SIGINT)  # py-spy writes the file when interrupted
        _, err = p.communicate(timeout=60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err[-1000:]}")


def short(file: str) -> str:
    """Our files as trustfence/..., everything else from its package on (mitmproxy/proxy/server.py)."""
    file = file.split("/site-packages/", 1)[-1]
    return "trustfence/" + file if file.startswith(PRODUCT) else file


def parse(path: Path) -> list[tuple[str, list[tuple[str, str]], int]]:
    """(thread, [(function, short file)] root first, samples) per line of a raw py-spy file."""
    stacks = []
    for line in path.read_text().splitlines():
        body, _, n = line.rpartition(" ")
        if not body or not n.isdigit():
            continue
        parts = body.split(";")
        thread = next((p for p in parts[:2] if p.startswith("thread ")), "thread ?")
        frames = []
        for p in parts:
            if (m := FRAME.match(p)) and not p.startswith(("thread ", "process ")):
                frames.append((m["fn"], short(m["file"])))
        stacks.append((thread, frames, int(n)))
    return stacks


def summary(path: Path, top: int = 15) -> str:
    stacks = parse(path)
    total = sum(n for _, _, n in stacks) or 1
    by_thread: Counter[str] = Counter()
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    for thread, frames, n in stacks:
        by_thread[thread] += n
        leaf = frames[-1] if frames else ("?", "?")
        self_t[f"{leaf[0]} ({leaf[1]})"] += n
        for key in {f"{fn} ({f})" for fn, f in frames}:
            incl[key] += n
        for mod in {f for _, f in frames if f.startswith(HOT)}:
            modules[mod] += n

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    out = [f"py-spy: {total} busy samples at {RATE}/s ({total / RATE:.1f} s of work); shares are of these"]
    out.append("threads:")
    out += [f"  {pct(n)}  {t}" for t, n in by_thread.most_common(6)]
    out.append(f"top {top} self:")
    out += [f"  {pct(n)}  {k}" for k, n in self_t.most_common(top)]
    out.append(f"top {top} inclusive, ours and mitmproxy's addon calls:")
    ours = [(k, n) for k, n in incl.most_common() if any(h in k for h in HOOKS)]
    out += [f"  {pct(n)}  {k}" for k, n in ours[:top]]
    out.append("trustfence modules, inclusive:")
    out += [f"  {pct(n)}  {k}" for k, n in modules.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
