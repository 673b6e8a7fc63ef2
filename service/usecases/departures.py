"""Departure advice: one trip scored at every departure of a window, ranked by risk and time.

The ranking is CompareRoutes' blend (``service.usecases.compare.rank``): the alternatives are the same
route at different departure times, so risk changes with the local hour of every cell passed
and duration changes with the expected wait at the crossing at each arrival time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from geodata.errors import InvalidRequestError, Violation
from service.usecases.compare import checked_weight

DEFAULT_WINDOW_S = 24 * 3600
MAX_WINDOW_S = 7 * 24 * 3600
DEFAULT_STEP_S = 3600
MIN_STEP_S = 15 * 60
# a week at one departure an hour, both ends included
MAX_CANDIDATES = 169


def check_request(window_s: float | None, step_s: float | None, risk_weight: float | None) -> tuple[int, int, float]:
    """(window s, step s, risk weight), defaults applied to those unset; every problem reported at once."""
    window_s = DEFAULT_WINDOW_S if window_s is None else window_s
    step_s = DEFAULT_STEP_S if step_s is None else step_s
    bad = []
    window_ok = 0 < window_s <= MAX_WINDOW_S
    if not window_ok:
        bad.append(Violation("window", f"window {window_s:g}s is outside (0, {MAX_WINDOW_S}s] (at most 7 days)"))
    if step_s < MIN_STEP_S:
        bad.append(Violation("step", f"step {step_s:g}s is shorter than {MIN_STEP_S}s (15 min)"))
    elif window_ok and step_s > window_s:
        bad.append(Violation("step", f"step {step_s:g}s is longer than the window ({window_s:g}s)"))
    elif window_ok and window_s // step_s + 1 > MAX_CANDIDATES:
        count = int(window_s // step_s) + 1
        bad.append(Violation("step", f"{count} departures in the window; at most {MAX_CANDIDATES} (a longer step)"))
    weight = checked_weight(risk_weight, bad)
    if bad:
        raise InvalidRequestError(bad)
    return int(window_s), int(step_s), weight


def candidates(start_s: int, window_s: int, step_s: int) -> list[int]:
    """Departure times from ``start_s`` every ``step_s`` to the end of the window, both ends included."""
    return list(range(start_s, start_s + window_s + 1, step_s))


def label(departure_s: int, zone: str) -> str:
    """'departure Wed 12 Mar 22:00 CST': how a dispatcher reads the time, in the route's local zone."""
    local = datetime.fromtimestamp(departure_s, UTC).astimezone(ZoneInfo(zone))
    return f"departure {local:%a %d %b %H:%M %Z}"
