"""`sync --every` intervals: a number with a unit, never below a minimum.

A bare number used to mean seconds (`--every 15` ran every 15 s, `--every 0s` was a tight loop against
the CRM's quota); a unit is now required and anything under a minute is refused.
"""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_SECONDS = 60.0
_FORM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)


class IntervalError(ValueError):
    """An interval that is not a number with a unit, or is below the minimum."""


def parse_interval(text: str, minimum: float = MIN_SECONDS) -> float:
    """Seconds in `text` (e.g. 90s, 15m, 1h, 1d); IntervalError names the text and says what is accepted."""
    m = _FORM.match(text or "")
    if not m:
        raise IntervalError(f"interval {text!r}: give a number and a unit (s, m, h or d), e.g. 15m, 1h or 1d")
    seconds = float(m.group(1)) * UNITS[m.group(2).lower()]
    if seconds < minimum:
        raise IntervalError(f"interval {text!r} is {seconds:g}s: the minimum is {minimum:g}s "
                            f"({minimum / 60:g}m), so a loop never hammers the CRM's API quota")
    return seconds
