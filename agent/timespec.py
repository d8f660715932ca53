"""Points in time as an operator types them: ``15m``, ``2h``, ``7d``, ``1w`` ago, or an ISO 8601 time.

Pure: ``now`` is passed in. Times without a zone are UTC, as the traffic rows are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["TimeSpecError", "parse_time"]

_AGO = re.compile(r"^(\d{1,6})\s*(s|m|h|d|w)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TimeSpecError(ValueError):
    """A time that is neither a duration ago nor an ISO 8601 time; the message shows both forms."""


def parse_time(text: str, now: datetime) -> datetime:
    """The UTC time ``text`` names (naive, like the rows' ``ts``)."""
    t = text.strip()
    m = _AGO.match(t)
    if m:
        return (now - timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])).astimezone(UTC).replace(tzinfo=None)
    try:
        when = datetime.fromisoformat(t)
    except ValueError:
        raise TimeSpecError(f"{text!r} is not a time: use a duration ago (30s, 15m, 2h, 7d, 1w) or an ISO 8601 "
                            "time (2026-12-01, 2026-12-01T09:30, 2026-12-01T09:30+01:00)") from None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
