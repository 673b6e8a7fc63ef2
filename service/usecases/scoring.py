"""The ScoreRoute use case: route → cells → timeline → layer rates → score and reasons.

The model (docs/model.md):
- every chain cell is entered at a time derived from the departure, the speed,
  the planned stops and the border waits before it;
- expected incidents = Σ rate(cell, local hour of week) × hours exposed there,
  counting driving, stops (weighted by ``STOP_RISK_MULTIPLIER``: parked trucks are
  the easiest targets) and queueing at a port of entry;
- probability = 1 − exp(−expected); score = 100 · E / (E + ``HALF_SCORE_INCIDENTS``),
  monotone and bounded; levels by fixed score thresholds.
Pure numpy over the chain; no gRPC here, so it can be benchmarked in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from geodata import coverage
from geodata.border import SOUTHBOUND_DEFAULT_WAIT_MINUTES, BorderData, Crossing, WaitEstimate, detect_crossings
from geodata.cells import CellChain, nearest_chain_index, route_to_cells
from geodata.errors import InvalidRequestError, Violation
from geodata.geometry import haversine_km
from geodata.layers import RiskLayer
from geodata.route import RoutePath
from geodata.timezones import LocalClock

# Expected incidents at which the score is 50 (one trip in ten thousand).
HALF_SCORE_INCIDENTS = 1e-4
# Lower score bounds of MODERATE, HIGH, SEVERE, CRITICAL (LOW below the first).
LEVEL_THRESHOLDS = (20.0, 40.0, 60.0, 80.0)
LEVELS = ("low", "moderate", "high", "severe", "critical")
# the level of a route mostly outside the layer's coverage: no level at all, never "low"
NOT_COVERED = "not_covered"
# A cell's or segment's level is the level of a trip this long spent entirely at its rate.
REFERENCE_TRIP_HOURS = 10.0
STOP_RISK_MULTIPLIER = 2.0
# A planned stop farther than this from the route is a caller's mistake, not a detour.
STOP_MAX_OFFSET_KM = 5.0
# Longer than this is no truck trip, and its times would leave the dates the model can place.
MAX_TRIP_HOURS = 366 * 24.0
SEGMENT_WINDOW_KM = 10.0
# the queue at a port of entry stands on the last stretch of road before the line
QUEUE_APPROACH_KM = 3.0
MAX_SEGMENTS = 10
MAX_HOTSPOTS = 10


def score_from_expected(expected: float) -> float:
    """Map expected incidents to 0..100 (monotone, 50 at ``HALF_SCORE_INCIDENTS``)."""
    expected = max(expected, 0.0)
    return 100.0 * expected / (expected + HALF_SCORE_INCIDENTS)


def level_of_score(score: float) -> str:
    """Level name for a score."""
    return LEVELS[int(np.searchsorted(LEVEL_THRESHOLDS, score, side="right"))]


def level_of_rate(rate_per_hour: float) -> str:
    """Level of an hourly rate: the level of a reference trip spent at that rate."""
    return level_of_score(score_from_expected(rate_per_hour * REFERENCE_TRIP_HOURS))


def rate_at_level(level: str) -> float:
    """Lowest hourly rate that reaches ``level``."""
    score = ([0.0, *LEVEL_THRESHOLDS])[LEVELS.index(level)]
    return HALF_SCORE_INCIDENTS * score / (100.0 - score) / REFERENCE_TRIP_HOURS


@dataclass(frozen=True)
class Stop:
    lat: float
    lng: float
    dwell_s: float


@dataclass(frozen=True)
class ScoreQuery:
    """A validated request in domain terms."""

    path: RoutePath
    departure_s: int
    speed_kmh: float
    lane: str = "standard"
    stops: tuple[Stop, ...] = ()


@dataclass(frozen=True)
class ModelOptions:
    resolution: int = 8
    live_max_age_s: int = 3600
    crossing_match_km: float = 15.0


@dataclass(frozen=True)
class SegmentResult:
    start_km: float
    end_km: float
    start: tuple[float, float]
    end: tuple[float, float]
    enter_s: float
    exit_s: float
    expected: float
    share: float
    incident_count: int
    level: str
    exposure_h: float


@dataclass(frozen=True)
class HotspotResult:
    cell: int
    rate: float
    incident_count: int
    last_incident_s: int
    expected: float
    pass_s: float
    recent_share: float = 0.0  # near-repeat share of the cell's rate (adaptive layers)
    recent_since_s: int = 0  # set when the cell is elevated by recent activity


@dataclass(frozen=True)
class CrossingResult:
    crossing: Crossing
    lane: str
    wait_minutes: float
    wait_source: str
    observed_at_s: int
    arrival_s: float
    closed: bool
    expected: float
    operational_status: str = ""
    opens_at_s: int = 0  # when closed at arrival: when the lanes open (the wait counts until then)


@dataclass(frozen=True)
class UncoveredStretch:
    """A run of the route outside the layer's coverage."""

    start_km: float
    end_km: float
    start: tuple[float, float]
    end: tuple[float, float]


@dataclass(frozen=True)
class RouteScore:
    score: float
    level: str
    expected: float
    probability: float
    distance_km: float
    duration_h: float
    exposed_h: float
    departure_s: int
    segments: tuple[SegmentResult, ...]
    hotspots: tuple[HotspotResult, ...]
    crossings: tuple[CrossingResult, ...]
    layer_version: str
    layer_synthetic: bool
    resolution: int
    cell_count: int
    queue_expected: float = 0.0
    border_version: str = ""
    covered_fraction: float = 1.0
    uncovered: tuple[UncoveredStretch, ...] = ()


@dataclass
class _Timeline:
    """Hours spent per chain cell and when the truck enters it."""

    drive_h: np.ndarray
    dwell_h: np.ndarray
    wait_h: np.ndarray
    enter_s: np.ndarray
    clock: LocalClock

    def hours(self, utc_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Local hour of week at chain entries ``rows`` (all when None) at UTC instants."""
        return self.clock.hour_of_week(np.floor(utc_s).astype(np.int64), rows)


def score_route(
    query: ScoreQuery,
    layer: RiskLayer,
    border: BorderData,
    options: ModelOptions,
    chain: CellChain | None = None,
    crossings: list[Crossing] | None = None,
) -> RouteScore:
    """Score one trip against one layer and one border data version (never a mix).

    ``chain`` is the route's cell chain and ``crossings`` its border crossings when the
    caller already has them (the geometry cache, the cache key); missing ones are computed.
    """
    if crossings is None:
        crossings = detect_crossings(query.path, border, options.crossing_match_km)
    if chain is None or chain.resolution != layer.resolution:
        chain = route_to_cells(query.path, layer.resolution)
    along_km = query.path.along_km
    timeline = _timeline(chain, query, along_km)
    crossing_rows = _place_crossings(query, border, options, chain, along_km, timeline, crossings)
    drive_mid_s = timeline.enter_s + (timeline.wait_h + timeline.drive_h / 2) * 3600.0
    drive_rates = layer.rates(chain.cells, timeline.hours(drive_mid_s))
    expected_cells = drive_rates * timeline.drive_h
    expected_cells += _stop_expected(chain, layer, timeline)
    results = tuple(_crossing_results(crossing_rows, chain, layer, timeline, query.lane))
    for row, result in zip((r for r, _, _ in crossing_rows), results, strict=True):
        expected_cells[row] += result.expected
    expected = float(expected_cells.sum())
    score = score_from_expected(expected)
    inside = coverage.of_route(layer.coverage, chain.cells, chain.length_km)
    high = drive_rates >= rate_at_level("high")
    exposed_h = float((timeline.drive_h + timeline.dwell_h)[high].sum() + timeline.wait_h.sum())
    duration_h = float((timeline.drive_h + timeline.dwell_h + timeline.wait_h).sum())
    return RouteScore(
        score=score,
        level=NOT_COVERED if inside.mostly_outside else level_of_score(score),
        expected=expected,
        probability=float(-np.expm1(-expected)),
        distance_km=chain.total_km,
        duration_h=duration_h,
        exposed_h=exposed_h,
        departure_s=query.departure_s,
        segments=_segments(chain, query.path, along_km, layer, timeline, expected_cells),
        hotspots=_hotspots(chain, layer, timeline, expected_cells, drive_rates),
        crossings=results,
        layer_version=layer.version,
        layer_synthetic=layer.synthetic,
        resolution=chain.resolution,
        cell_count=len(chain.cells),
        queue_expected=float(sum(c.expected for c in results)),
        border_version=border.version,
        covered_fraction=inside.fraction,
        uncovered=_uncovered(chain, query.path, along_km, inside),
    )


def _uncovered(
    chain: CellChain, path: RoutePath, along_km: np.ndarray, inside: coverage.RouteCoverage
) -> tuple[UncoveredStretch, ...]:
    """The uncovered runs of chain rows as stretches of the route (km and end points)."""
    if not inside.stretches:
        return ()
    first = np.array([a for a, _ in inside.stretches])
    last = np.array([b for _, b in inside.stretches])
    start_km = chain.start_km[first]
    end_km = chain.start_km[last] + chain.length_km[last]
    ends = _points_at(path, along_km, np.concatenate([start_km, end_km]))
    n = len(first)
    return tuple(UncoveredStretch(float(start_km[k]), float(end_km[k]), ends[k], ends[n + k]) for k in range(n))


def _chain_row(chain: CellChain, km: float) -> int:
    """Chain entry holding the point ``km`` along the route."""
    row = int(np.searchsorted(chain.start_km, km, side="right")) - 1
    return min(max(row, 0), len(chain.cells) - 1)


def _timeline(chain: CellChain, query: ScoreQuery, along_km: np.ndarray) -> _Timeline:
    with np.errstate(over="ignore"):  # a tiny speed gives inf hours, rejected below
        drive_h = chain.length_km / query.speed_kmh
    dwell_h = np.zeros(len(chain.cells))
    for i, stop in enumerate(query.stops):
        position = nearest_chain_index(chain, query.path, stop.lat, stop.lng)
        if position.offset_km > STOP_MAX_OFFSET_KM:
            raise InvalidRequestError(
                Violation(
                    f"stops[{i}].location",
                    f"stop is {position.offset_km:.1f} km from the route (at most {STOP_MAX_OFFSET_KM:g} km)",
                )
            )
        dwell_h[position.index] += stop.dwell_s / 3600.0
    _check_trip_length(float(drive_h.sum()), float(dwell_h.sum()), chain.total_km, query.speed_kmh)
    empty = np.zeros(len(chain.cells))
    timeline = _Timeline(drive_h, dwell_h, empty.copy(), empty, LocalClock(chain.cells))
    _refresh_enter_times(timeline, query.departure_s)
    return timeline


def _check_trip_length(drive_h: float, dwell_h: float, km: float, speed_kmh: float) -> None:
    """A trip must end within :data:`MAX_TRIP_HOURS` (a tiny speed or endless stops do not)."""
    if drive_h + dwell_h <= MAX_TRIP_HOURS:  # also False for inf and NaN
        return
    if not drive_h <= MAX_TRIP_HOURS:
        field, why = "average_speed_kmh", f"{km:.1f} km at {speed_kmh:g} km/h"
    else:
        field, why = "stops", f"{dwell_h:.0f} h of stops"
    raise InvalidRequestError(
        Violation(field, f"the trip would take more than {MAX_TRIP_HOURS:.0f} h ({why}); check the speed and stops")
    )


def _refresh_enter_times(timeline: _Timeline, departure_s: int) -> None:
    spent_h = timeline.wait_h + timeline.drive_h + timeline.dwell_h
    before_h = np.concatenate([[0.0], np.cumsum(spent_h)[:-1]])
    timeline.enter_s = departure_s + before_h * 3600.0


def _place_crossings(
    query: ScoreQuery,
    border: BorderData,
    options: ModelOptions,
    chain: CellChain,
    along_km: np.ndarray,
    timeline: _Timeline,
    crossings: list[Crossing],
) -> list[tuple[int, Crossing, WaitEstimate]]:
    """Wait at each crossing at its arrival time (earlier waits delay later ones)."""
    rows = []
    for crossing in crossings:
        i = crossing.vertex_index
        segment = along_km[i + 1] - along_km[i]
        to_port = float(haversine_km(query.path.lat[i], query.path.lng[i], crossing.port.lat, crossing.port.lng))
        row = _chain_row(chain, float(along_km[i] + min(to_port, segment)))
        arrival_s = int(timeline.enter_s[row])
        if crossing.direction == "northbound":
            estimate = border.expected_wait(crossing.port, query.lane, arrival_s, options.live_max_age_s)
        else:
            estimate = WaitEstimate(SOUTHBOUND_DEFAULT_WAIT_MINUTES, "default")
        timeline.wait_h[row] += estimate.minutes / 60.0
        _refresh_enter_times(timeline, query.departure_s)
        rows.append((row, crossing, estimate))
    return rows


def _stop_expected(chain: CellChain, layer: RiskLayer, timeline: _Timeline) -> np.ndarray:
    out = np.zeros(len(chain.cells))
    rows = np.flatnonzero(timeline.dwell_h > 0)
    if len(rows):
        mid_s = (
            timeline.enter_s[rows]
            + (timeline.wait_h[rows] + timeline.drive_h[rows] + timeline.dwell_h[rows] / 2) * 3600
        )
        rates = layer.rates(chain.cells[rows], timeline.hours(mid_s, rows))
        out[rows] = rates * timeline.dwell_h[rows] * STOP_RISK_MULTIPLIER
    return out


def _crossing_results(
    rows: list[tuple[int, Crossing, WaitEstimate]], chain: CellChain, layer: RiskLayer, timeline: _Timeline, lane: str
) -> Iterator[CrossingResult]:
    for row, crossing, estimate in rows:
        approach = _approach_rows(chain, row)
        queue_mid_s = timeline.enter_s[row] + timeline.wait_h[row] * 1800
        hours = timeline.hours(np.full(len(approach), queue_mid_s), approach)
        rate = float(layer.rates(chain.cells[approach], hours).mean())
        yield CrossingResult(
            crossing=crossing,
            lane=lane,
            wait_minutes=estimate.minutes,
            wait_source=estimate.source,
            observed_at_s=estimate.observed_at_s,
            arrival_s=float(timeline.enter_s[row]),
            closed=estimate.closed,
            expected=rate * estimate.minutes / 60.0,
            operational_status=estimate.operational_status,
            opens_at_s=estimate.opens_at_s,
        )


def _approach_rows(chain: CellChain, row: int) -> np.ndarray:
    """Chain rows of the port's approach: the last ``QUEUE_APPROACH_KM`` before the crossing."""
    start = chain.start_km[row] - QUEUE_APPROACH_KM
    first = int(np.searchsorted(chain.start_km, start, side="left"))
    return np.arange(min(first, row), row + 1)


def _segments(
    chain: CellChain,
    path: RoutePath,
    along_km: np.ndarray,
    layer: RiskLayer,
    timeline: _Timeline,
    expected_cells: np.ndarray,
) -> tuple[SegmentResult, ...]:
    """Runs of ~10 km windows at MODERATE density or above (else the riskiest window)."""
    total = float(expected_cells.sum())
    if total <= 0:
        return ()
    window = np.floor((chain.start_km + chain.length_km / 2) / SEGMENT_WINDOW_KM).astype(np.int64)
    n = int(window.max()) + 1
    spent_h = timeline.drive_h + timeline.dwell_h + timeline.wait_h
    win_expected = np.bincount(window, weights=expected_cells, minlength=n)
    win_hours = np.bincount(window, weights=spent_h, minlength=n)
    density = np.divide(win_expected, win_hours, out=np.zeros(n), where=win_hours > 0)
    marked = density >= rate_at_level("moderate")
    if not marked.any():
        marked[int(np.argmax(win_expected))] = True
    first_window, last_window = _runs(marked)
    # windows are non-decreasing along the chain, so each run is one slice of rows
    first = np.searchsorted(window, first_window, side="left")
    last = np.searchsorted(window, last_window, side="right") - 1
    expected, hours, counts = (
        _slice_sums(values, first, last) for values in (expected_cells, spent_h, _own_counts(chain, layer))
    )
    keep = np.sort(np.argsort(-expected, kind="stable")[:MAX_SEGMENTS])
    first, last, expected, hours, counts = first[keep], last[keep], expected[keep], hours[keep], counts[keep]
    start_km = chain.start_km[first]
    end_km = chain.start_km[last] + chain.length_km[last]
    ends = _points_at(path, along_km, np.concatenate([start_km, end_km]))
    exit_s = timeline.enter_s[last] + spent_h[last] * 3600
    density = np.divide(expected, hours, out=np.zeros(len(hours)), where=hours > 0)
    return tuple(
        SegmentResult(
            start_km=float(start_km[k]),
            end_km=float(end_km[k]),
            start=ends[k],
            end=ends[len(keep) + k],
            enter_s=float(timeline.enter_s[first[k]]),
            exit_s=float(exit_s[k]),
            expected=float(expected[k]),
            share=float(expected[k] / total),
            incident_count=int(counts[k]),
            level=level_of_rate(float(density[k])),
            exposure_h=float(hours[k]),
        )
        for k in range(len(keep))
    )


def _slice_sums(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Sums of ``values[first[k] : last[k] + 1]`` for every k."""
    cumulative = np.concatenate([[0], np.cumsum(values)])
    return cumulative[last + 1] - cumulative[first]


def _runs(marked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last indices of each run of consecutive True values."""
    edges = np.diff(np.concatenate([[0], marked.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def _own_counts(chain: CellChain, layer: RiskLayer) -> np.ndarray:
    rows, found = layer.index(chain.cells)
    if len(layer.cells) == 0:
        return np.zeros(len(chain.cells), dtype=np.int64)
    return np.where(found, layer.incident_count[rows], 0)


def _points_at(path: RoutePath, along_km: np.ndarray, km: np.ndarray) -> list[tuple[float, float]]:
    """Points ``km`` along the route, linear between vertices (metres at vertex spacing)."""
    lat = np.interp(km, along_km, path.lat)
    lng = np.interp(km, along_km, path.lng)
    return list(zip(lat.tolist(), lng.tolist(), strict=True))


def _hotspots(
    chain: CellChain,
    layer: RiskLayer,
    timeline: _Timeline,
    expected_cells: np.ndarray,
    rates: np.ndarray,
) -> tuple[HotspotResult, ...]:
    """The cells contributing most to this trip's expected incidents."""
    cells, first, inverse = np.unique(chain.cells, return_index=True, return_inverse=True)
    per_cell = np.bincount(inverse, weights=expected_cells)
    peak = np.zeros(len(cells))
    np.maximum.at(peak, inverse, rates)
    top = (
        np.argpartition(-per_cell, MAX_HOTSPOTS)[:MAX_HOTSPOTS]
        if len(per_cell) > MAX_HOTSPOTS
        else np.arange(len(per_cell))
    )
    order = [int(i) for i in top[np.lexsort((top, -per_cell[top]))] if per_cell[i] > 0]
    rows, found = layer.index(cells[order]) if order else (np.array([], dtype=np.intp), np.array([], dtype=bool))
    elevated, share, since = layer.recent_activity(rows)
    out = []
    for k, i in enumerate(order):
        present = bool(found[k])
        out.append(
            HotspotResult(
                cell=int(cells[i]),
                rate=float(peak[i]),
                incident_count=int(layer.incident_count[rows[k]]) if present else 0,
                last_incident_s=int(layer.last_incident_s[rows[k]]) if present else 0,
                expected=float(per_cell[i]),
                pass_s=float(timeline.enter_s[first[i]]),
                recent_share=float(share[k]) if present else 0.0,
                recent_since_s=int(since[k]) if present and elevated[k] else 0,
            )
        )
    return tuple(out)
