"""The descriptor limit raised to the hard limit, and the headroom tf status shows."""

from __future__ import annotations

import os
import resource
import subprocess
import sys


def test_soft_limit_is_raised_to_the_hard_limit() -> None:
    code = ("import resource; from trustfence.agent.fdlimit import raise_nofile, headroom; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
            "n = raise_nofile(); print(n, resource.getrlimit(resource.RLIMIT_NOFILE)[0], headroom()['limit'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert [int(x) for x in out] == [hard] * 3 and hard > 256


def test_headroom_counts_open_descriptors() -> None:
    from trustfence.agent.fdlimit import headroom

    before = headroom()
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(10)]
    try:
        after = headroom()
    finally:
        for fd in fds:
            os.close(fd)
    assert after["open"] - before["open"] == 10
    assert after["limit"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert 0 < after["free_percent"] < 100
