"""How the CLI shows coverage and closed ports: one place, so ``score``, ``compare``,
``departures``, ``score-batch`` and ``map`` say the same thing the same way.

A route outside the data's coverage has no risk level; its score is never shown as a bare
number (``0.0`` reads as "safe"), and any route not fully covered gets a warning on stderr.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC

from routerisk.v1 import route_risk_service_pb2 as pb

NOT_COVERED_TEXT = "not covered"


def not_covered(r: pb.ScoreRouteResponse) -> bool:
    return r.level == pb.RISK_LEVEL_NOT_COVERED


def level_text(r: pb.ScoreRouteResponse) -> str:
    """The level's name, ``NOT COVERED`` for a route mostly outside the data."""
    return pb.RiskLevel.Name(r.level).removeprefix("RISK_LEVEL_").replace("_", " ")


def score_cell(r: pb.ScoreRouteResponse) -> str:
    """The score for a table: ``n/a`` when the route is mostly outside the data's coverage."""
    return "n/a" if not_covered(r) else f"{r.score:.1f}"


def coverage_cell(r: pb.ScoreRouteResponse) -> str:
    """Share of the route inside coverage, e.g. ``100%``, ``99.5%`` or ``19.5%``: rounded down, so
    a route not fully inside never shows 100%."""
    if r.covered_fraction >= 1.0:
        return "100%"
    return f"{math.floor(r.covered_fraction * 1000) / 10:.1f}%"


def stretches_text(r: pb.ScoreRouteResponse, limit: int = 5) -> str:
    """``km 7–37, km 120–131`` (the first few uncovered stretches)."""
    parts = [f"km {s.start_km:.0f}–{s.end_km:.0f}" for s in r.uncovered_stretches[:limit]]
    more = len(r.uncovered_stretches) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def coverage_warning(r: pb.ScoreRouteResponse, label: str = "the route") -> str | None:
    """The stderr warning for a route not fully inside the data's coverage, or None."""
    if not r.uncovered_stretches:
        return None
    what = (
        "no risk level (mostly outside the data: its score covers only the covered part)"
        if not_covered(r)
        else "its score covers only the covered part"
    )
    return (
        f"warning: only {coverage_cell(r)} of {label} lies inside the layer's data coverage; "
        f"{what}; not covered: {stretches_text(r)}"
    )


def warn_coverage(r: pb.ScoreRouteResponse, label: str = "the route") -> None:
    message = coverage_warning(r, label)
    if message:
        print(message, file=sys.stderr)


def wait_text(c: pb.CrossingPassage | pb.LaneWait) -> str:
    """``35 min``, or for lanes closed at arrival ``closed until Wed 12:00 UTC, 305 min``: the wait
    counts the time until they open."""
    if c.closed and c.HasField("lanes_open_time"):
        opens = c.lanes_open_time.ToDatetime(UTC).strftime("%a %H:%M UTC")
        return f"closed until {opens}, {c.expected_wait_minutes:.0f} min"
    return f"CLOSED, {c.expected_wait_minutes:.0f} min" if c.closed else f"{c.expected_wait_minutes:.0f} min"
