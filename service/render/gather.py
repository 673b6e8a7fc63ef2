"""Everything a trip map shows, gathered from a ScoreRoute answer and the risk of each cell the
route passes at the hour the truck passes it: what ``routerisk map`` asks a server for over gRPC
and the HTTP port's dispatcher page computes in the server itself, through the functions given."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from zoneinfo import ZoneInfo

import h3
import numpy as np

from geodata import route as routes
from geodata.cells import route_to_cells
from geodata.timezones import zone_at
from routerisk.v1 import route_risk_service_pb2 as pb
from service.render import trip_map

Score = Callable[[pb.ScoreRouteRequest], pb.ScoreRouteResponse]
# the H3 cells (hexadecimal) and the epoch seconds at which each is passed → one answer per cell, in order
CellRisks = Callable[[list[str], list[int]], list[pb.GetCellRiskResponse]]
# an answer's departure and arrival as the map says them
Ends = Callable[[pb.ScoreRouteResponse], tuple[str, str]]
UTC_STAMP = "%Y-%m-%d %H:%M UTC"


def utc_ends(response: pb.ScoreRouteResponse) -> tuple[str, str]:
    """Departure and arrival in UTC (where no local zone is at hand)."""
    return (
        response.departure_time.ToDatetime().strftime(UTC_STAMP),
        response.arrival_time.ToDatetime().strftime(UTC_STAMP),
    )


def _level(value: int) -> str:
    return pb.RiskLevel.Name(value).removeprefix("RISK_LEVEL_").lower()


def pass_times(response: pb.ScoreRouteResponse, km: np.ndarray) -> np.ndarray:
    """Epoch seconds at which the truck is at each distance along the route, interpolated between
    the times the response gives (departure, each risky segment's entry and exit, arrival)."""
    anchors = [(0.0, response.departure_time.ToNanoseconds() / 1e9)]
    for s in response.segments:
        anchors.append((s.start_km, s.enter_time.ToNanoseconds() / 1e9))
        anchors.append((s.end_km, s.exit_time.ToNanoseconds() / 1e9))
    anchors.append((response.distance_km, response.arrival_time.ToNanoseconds() / 1e9))
    anchors.sort()
    xs = np.array([a[0] for a in anchors])
    ts = np.maximum.accumulate(np.array([a[1] for a in anchors]))
    return np.interp(km, xs, ts)


def trip_of(
    score: Score,
    cell_risks: CellRisks,
    request: pb.ScoreRouteRequest,
    path: routes.RoutePath,
    title: str,
    ends: Ends = utc_ends,
) -> trip_map.TripMap:
    """Score the route and look up its cells: everything the map shows; ``ends`` says its departure
    and arrival (the CLI: in local time at the origin and at the end)."""
    response = score(request)
    chain = route_to_cells(path, response.resolution)
    ids, first = np.unique(chain.cells, return_index=True)
    order = np.argsort(first)
    ids, first = ids[order], first[order]
    mid_km = chain.start_km[first] + chain.length_km[first] / 2
    times = [int(t) for t in pass_times(response, mid_km)]
    names = [h3.int_to_str(int(c)) for c in ids]
    risks = cell_risks(names, times)
    cells = [
        trip_map.MapCell(cell=name, level=_level(r.level), rate=r.risk, incidents=int(r.incident_count))
        for name, r in zip(names, risks, strict=True)
    ]
    hotspots = [
        trip_map.MapHotspot(h.cell, h.center.latitude, h.center.longitude, h.risk, int(h.incident_count))
        for h in response.hotspots
    ]
    crossings = [
        trip_map.MapCrossing(
            name=f"{c.port_name} ({c.crossing_name})" if c.crossing_name else c.port_name,
            lat=c.location.latitude,
            lng=c.location.longitude,
            wait_minutes=c.expected_wait_minutes,
            wait_source=pb.WaitSource.Name(c.wait_source).removeprefix("WAIT_SOURCE_").lower(),
            closed=c.closed,
            opens=_opens_at_port(c),
        )
        for c in response.crossings
    ]
    departure, arrival = ends(response)
    facts = (
        ("distance", f"{response.distance_km:.1f} km"),
        ("duration", trip_map.hours_text(response.duration.ToTimedelta().total_seconds())),
        ("exposed", trip_map.hours_text(response.exposed_duration.ToTimedelta().total_seconds())),
        ("departure", departure),
        ("arrival", arrival),
        ("expected incidents", f"{response.expected_incidents:.2e}"),
        ("layer", response.layer_version),
    )
    return trip_map.TripMap(
        title=title,
        lat=path.lat.tolist(),
        lng=path.lng.tolist(),
        score=response.score,
        level=_level(response.level),
        cells=cells,
        hotspots=hotspots,
        crossings=crossings,
        facts=facts,
        synthetic=response.layer_synthetic,
        uncovered=[uncovered_points(path, s.start_km, s.end_km) for s in response.uncovered_stretches],
        covered_fraction=response.covered_fraction,
    )


def _opens_at_port(crossing: pb.CrossingPassage) -> str:
    """When closed lanes open, in the port's local time with its zone ("" when not closed)."""
    if not crossing.HasField("lanes_open_time"):
        return ""
    zone = ZoneInfo(zone_at(crossing.location.latitude, crossing.location.longitude))
    return crossing.lanes_open_time.ToDatetime(UTC).astimezone(zone).strftime("%a %H:%M %Z")


def uncovered_points(path: routes.RoutePath, start_km: float, end_km: float) -> list[tuple[float, float]]:
    """The route's points from ``start_km`` to ``end_km`` (ends interpolated): one uncovered stretch."""
    along = path.along_km
    inner = np.flatnonzero((along > start_km) & (along < end_km))
    km = np.concatenate([[start_km], along[inner], [end_km]])
    lat, lng = np.interp(km, along, path.lat), np.interp(km, along, path.lng)
    return list(zip(lat.tolist(), lng.tolist(), strict=True))
