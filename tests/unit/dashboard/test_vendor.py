"""The vendored Chart.js is the file its VERSION note names (unmodified, with its license beside it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[3] / "dashboard" / "static" / "vendor" / "chartjs"


def test_the_vendored_chart_library_matches_its_recorded_digest_and_version() -> None:
    note = dict(line.split(": ", 1) for line in (VENDOR / "VERSION").read_text().splitlines())
    data = (VENDOR / "chart.umd.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == note["sha256 of chart.umd.min.js"]
    assert f"Chart.js v{note['version']}" in data[:200].decode()
    assert "MIT License" in (VENDOR / "LICENSE.md").read_text()
