"""Durations as people write them on the command line and in the config: `90d`, `24h`."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90d`, `24h`, `30m`, `45s`, `2w`, or combined like `1d12h`."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit s, m, h, d or w (e.g. 90d, 24h)"
        )
    return sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())
