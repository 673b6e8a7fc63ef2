"""Commercial hours of a port of entry: when its cargo lanes are open, in the port's local time.

A truck that reaches a port while the commercial lanes are closed does not cross with "no
wait": it waits for the opening and then queues. So the hours are data, kept with the ports
(``seeds/port_hours.csv``, updated from the CBP feed's ``hours`` field) and used by every wait
estimate. A port whose hours are unknown is treated as open all the time, and says so.

Hours are intervals of the week in minutes (0 = Monday 00:00 local), so "07:00–24:00 on
weekdays, 07:00–16:00 on Saturdays" is five long intervals and one short one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from geodata.timezones import utc_offset_seconds

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# 1970-01-01 (epoch second 0) was a Thursday: day 3 of a week starting on Monday
_EPOCH_SECOND_OF_WEEK = 3 * 86_400
UNKNOWN_SOURCE = "unknown: treated as open 24 h"
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CBP_TIME = re.compile(r"^\s*(?:(noon|midnight)|(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s*m\.?)\s*$", re.IGNORECASE)
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class PortHours:
    """Open intervals of the week (minutes, sorted, disjoint) and where they come from."""

    intervals: tuple[tuple[int, int], ...]
    text: str
    source: str

    @property
    def always_open(self) -> bool:
        return self.intervals == ((0, MINUTES_PER_WEEK),)

    def opens_at(self, zone: str, utc_s: int) -> int:
        """The UTC second the lanes are next open at or after ``utc_s`` (``utc_s`` when open).

        The offset is the one at ``utc_s``: a daylight-saving change while the port is
        closed moves the opening by an hour at most, twice a year."""
        if self.always_open or not self.intervals:
            return utc_s
        local = utc_s + utc_offset_seconds(zone, utc_s)
        second = (local + _EPOCH_SECOND_OF_WEEK) % (MINUTES_PER_WEEK * 60)
        for start, end in self.intervals:
            if second < end * 60:
                return utc_s + max(start * 60 - second, 0)
        first_start = self.intervals[0][0]
        return utc_s + MINUTES_PER_WEEK * 60 - second + first_start * 60


UNKNOWN_HOURS = PortHours(((0, MINUTES_PER_WEEK),), "24 h", UNKNOWN_SOURCE)


def parse_span(text: str) -> tuple[int, int] | None:
    """``07:00-24:00`` → minutes of the day; ``24h`` → the whole day; ``closed`` or ``""`` → None."""
    value = text.strip().lower()
    if value in ("24h", "24 h", "00:00-24:00"):
        return 0, MINUTES_PER_DAY
    if value in ("", "closed"):
        return None
    match = _SPAN.match(value)
    if not match:
        raise ValueError(f"hours {text!r} are not HH:MM-HH:MM, 24h or closed")
    a, b, c, d = (int(x) for x in match.groups())
    start, end = a * 60 + b, c * 60 + d
    if not 0 <= start < end <= MINUTES_PER_DAY:
        raise ValueError(f"hours {text!r} do not lie within one day")
    return start, end


def parse_cbp(text: str) -> tuple[int, int]:
    """CBP's ``hours`` ('7 am-Midnight', '6 am-10 pm', '24 hrs/day') → minutes of the day."""
    value = text.strip().lower()
    if value.startswith("24"):
        return 0, MINUTES_PER_DAY
    parts = value.split("-")
    if len(parts) != 2:
        raise ValueError(f"CBP hours {text!r} are not 'open-close'")
    start, end = (_cbp_time(part, text) for part in parts)
    end = MINUTES_PER_DAY if end == 0 else end
    if not start < end:
        raise ValueError(f"CBP hours {text!r} close before they open")
    return start, end


def _cbp_time(part: str, text: str) -> int:
    match = _CBP_TIME.match(part)
    if not match:
        raise ValueError(f"CBP hours {text!r}: {part.strip()!r} is not a time")
    word, hour, minute, half = match.groups()
    if word:
        return 12 * 60 if word.lower() == "noon" else 0
    h = int(hour) % 12 + (12 if half.lower() == "p" else 0)
    return h * 60 + int(minute or 0)


# CBP's feed gives one ``hours`` text for every day; Saturday is taken to close at 16:00 at a port not
# open 24 h (seeds/README.md: the same rule the seed hours and default profiles use)
SATURDAY_CLOSE_MINUTE = 16 * 60


def from_cbp(text: str, source: str) -> PortHours:
    """Weekly hours from CBP's ``hours`` text (ValueError when it does not parse)."""
    span = parse_cbp(text)
    if span == (0, MINUTES_PER_DAY):
        return weekly(span, span, span, source)
    saturday = (span[0], min(span[1], SATURDAY_CLOSE_MINUTE)) if span[0] < SATURDAY_CLOSE_MINUTE else None
    return weekly(span, saturday, span, source)


def weekly(
    weekday: tuple[int, int] | None,
    saturday: tuple[int, int] | None,
    sunday: tuple[int, int] | None,
    source: str,
) -> PortHours:
    """Hours from the spans of a weekday, a Saturday and a Sunday (None: closed that day)."""
    days = [weekday] * 5 + [saturday, sunday]
    intervals: list[tuple[int, int]] = []
    for day, span in enumerate(days):
        if span is None:
            continue
        start, end = day * MINUTES_PER_DAY + span[0], day * MINUTES_PER_DAY + span[1]
        if intervals and intervals[-1][1] == start:  # open through midnight: one interval
            intervals[-1] = (intervals[-1][0], end)
        else:
            intervals.append((start, end))
    return PortHours(tuple(intervals), _describe(days), source)


def _describe(days: list[tuple[int, int] | None]) -> str:
    """``Mon-Fri 07:00-24:00; Sat 07:00-16:00; Sun 07:00-24:00`` (``24 h`` when always open)."""
    if all(span == (0, MINUTES_PER_DAY) for span in days):
        return "24 h"
    groups: list[tuple[int, int, tuple[int, int] | None]] = []
    for day, span in enumerate(days):
        if groups and groups[-1][2] == span:
            groups[-1] = (groups[-1][0], day, span)
        else:
            groups.append((day, day, span))
    parts = []
    for first, last, span in groups:
        days_text = _DAY_NAMES[first] if first == last else f"{_DAY_NAMES[first]}-{_DAY_NAMES[last]}"
        parts.append(f"{days_text} {_span_text(span)}")
    return "; ".join(parts)


def _span_text(span: tuple[int, int] | None) -> str:
    if span is None:
        return "closed"
    return f"{span[0] // 60:02d}:{span[0] % 60:02d}-{span[1] // 60:02d}:{span[1] % 60:02d}"
