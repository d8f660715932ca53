from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trustfence.agent.timespec import TimeSpecError, parse_time

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "want"), [
    ("15m", datetime(2026, 12, 2, 11, 45)), ("2h", datetime(2026, 12, 2, 10, 0)), ("7d", datetime(2026, 11, 25, 12)),
    ("1w", datetime(2026, 11, 25, 12)), ("30s", datetime(2026, 12, 2, 11, 59, 30)), (" 5 m ", datetime(2026, 12, 2, 11, 55)),
    ("2026-12-01", datetime(2026, 12, 1)), ("2026-12-01T09:30", datetime(2026, 12, 1, 9, 30)),
    ("2026-12-01T09:30+01:00", datetime(2026, 12, 1, 8, 30)),
])
def test_durations_ago_and_iso_times_become_naive_utc(text: str, want: datetime) -> None:
    assert parse_time(text, NOW) == want


@pytest.mark.parametrize("text", ["", "yesterday", "-5m", "5y", "15 minutes", "2026-13-01", "1" * 9 + "d"])
def test_anything_else_is_refused_with_both_forms(text: str) -> None:
    with pytest.raises(TimeSpecError, match="duration ago .* ISO 8601"):
        parse_time(text, NOW)
