"""Ranking alternative routes for one load by a blend of risk and time."""

from __future__ import annotations

import math
from dataclasses import dataclass

from geodata.errors import InputError, InvalidRequestError, Violation

MIN_ALTERNATIVES = 2
MAX_ALTERNATIVES = 10
DEFAULT_RISK_WEIGHT = 0.5


@dataclass(frozen=True)
class Option:
    """What the ranking needs of one scored alternative."""

    score: float
    duration_h: float
    via: str  # "via Laredo (World Trade Bridge)" or ""
    # False for a route mostly outside the layer's coverage: its score is not its risk, so it
    # never ranks above a covered one (its low score would read as "lowest risk")
    covered: bool = True


@dataclass(frozen=True)
class Ranking:
    order: list[int]  # indices, best first
    costs: list[float]  # per alternative, in request order
    reason: str


def check_request(count: int, risk_weight: float | None) -> float:
    """Validate the number of alternatives and the weight; returns the weight to use."""
    bad = []
    if not MIN_ALTERNATIVES <= count <= MAX_ALTERNATIVES:
        bad.append(Violation("alternatives", f"{count} alternatives; give {MIN_ALTERNATIVES} to {MAX_ALTERNATIVES}"))
    weight = checked_weight(risk_weight, bad)
    if bad:
        raise InvalidRequestError(bad)
    return weight


def checked_weight(risk_weight: float | None, bad: list[Violation]) -> float:
    """The risk weight to use (default when unset); a problem with it is added to ``bad``."""
    weight = DEFAULT_RISK_WEIGHT if risk_weight is None else risk_weight
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        bad.append(Violation("risk_weight", f"risk_weight {weight} is outside [0, 1]"))
    return weight


def prefixed(error: InputError, prefix: str) -> InputError:
    """The same violations with field paths under ``prefix`` (e.g. ``alternatives[2].``)."""
    return InputError([Violation(prefix + v.field, v.description) for v in error.violations])


def rank(options: list[Option], risk_weight: float, names: list[str] | None = None) -> Ranking:
    """cost = w · score/100 + (1 − w) · duration / longest duration; lowest first, ties by position,
    routes mostly outside the layer's coverage after every covered one.

    ``names`` label the options in the reason (default: "alternative N")."""
    longest = max(o.duration_h for o in options) or 1.0
    costs = [risk_weight * o.score / 100.0 + (1.0 - risk_weight) * o.duration_h / longest for o in options]
    order = sorted(range(len(options)), key=lambda i: (not options[i].covered, costs[i], i))
    name = names[order[0]] if names else f"alternative {order[0] + 1}"
    return Ranking(order, costs, _reason(options, order, risk_weight, name))


def _reason(options: list[Option], order: list[int], weight: float, name: str) -> str:
    best, runner = options[order[0]], options[order[1]]
    safest = min(o.score for o in options)
    fastest = min(o.duration_h for o in options)
    head = f"{name}{(' ' + best.via) if best.via else ''}"
    if best.score <= safest and best.duration_h <= fastest:
        return (
            f"{head}: lowest risk (score {best.score:.0f} vs {runner.score:.0f}) and fastest ({_hm(best.duration_h)})"
        )
    if best.score <= safest:
        return (
            f"{head}: lowest risk (score {best.score:.0f} vs {runner.score:.0f}) "
            f"for {_hm(best.duration_h - fastest)} more than the fastest, at risk weight {weight:g}"
        )
    if best.duration_h <= fastest:
        return (
            f"{head}: fastest ({_hm(best.duration_h)}), its score {best.score - safest:.0f} points above the "
            f"lowest-risk alternative is worth less than the time saved at risk weight {weight:g}"
        )
    blend = f"score {best.score:.0f}, {_hm(best.duration_h)}"
    return f"{head}: best blend of risk and time ({blend}) at risk weight {weight:g}"


def _hm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
