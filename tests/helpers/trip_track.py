"""A recorded-looking track along the Mexico City → Laredo demo route, for MonitorTrip tests.

One position a minute at 80 km/h along the route, with, in this order: a 40-minute stop in a
cell that is high-risk at that hour (seed layer), a 30-minute detour about 5 km off the route,
and the approach to Nuevo Laredo / Laredo (World Trade Bridge) at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gpxpy.gpx
import h3.api.basic_int as h3i
import numpy as np

import seeds
from geodata.route import RoutePath, from_file
from service.store.serving import build_seed_layer
from service.usecases.scoring import rate_at_level
from service.usecases.trip_monitor import Position, cell_rate, distance_to_route_km

DEPARTURE_S = int(datetime(2025, 3, 12, 4, 0, tzinfo=UTC).timestamp())  # Wednesday 22:00 in Mexico City
SPEED_KMH = 80.0
STEP_S = 60
STOP_S = 40 * 60
DETOUR_S = 30 * 60
DETOUR_DEG = 0.05  # of longitude, about 5 km at these latitudes


@dataclass(frozen=True)
class Track:
    route: RoutePath
    positions: list[Position]
    stop_index: int  # first position of the stop
    detour_index: int  # first position of the detour


def _point_at(route: RoutePath, km: float) -> tuple[float, float]:
    along = route.along_km
    return float(np.interp(km, along, route.lat)), float(np.interp(km, along, route.lng))


def build_track() -> Track:
    route = from_file(seeds.DEMO_ROUTES["mexico-city_laredo"])
    layer = build_seed_layer(8)
    high = rate_at_level("high")
    total = float(route.along_km[-1])
    positions: list[Position] = []
    km, t = 0.0, float(DEPARTURE_S)
    step_km = SPEED_KMH * STEP_S / 3600
    stop_index = detour_index = -1
    while km <= total:
        lat, lng = _point_at(route, km)
        if stop_index < 0 and km > 150 and _stays_high(layer, lat, lng, t, high):
            stop_index = len(positions)
            for i in range(STOP_S // STEP_S + 1):
                jitter = 0.00005 * (i % 2)  # GPS noise of a few metres
                positions.append(Position(t, lat + jitter, lng, 0.0))
                t += STEP_S
            continue_km = km
        elif stop_index >= 0 and detour_index < 0 and km > continue_km + 100 and _detour_ok(route, lat, lng):
            detour_index = len(positions)
            for _ in range(DETOUR_S // STEP_S):
                lat, lng = _point_at(route, km)
                positions.append(Position(t, lat, lng + DETOUR_DEG, 50.0))
                km += 50.0 * STEP_S / 3600
                t += STEP_S
            continue
        positions.append(Position(t, lat, lng, SPEED_KMH))
        km += step_km
        t += STEP_S
    end_lat, end_lng = float(route.lat[-1]), float(route.lng[-1])
    positions.append(Position(t, end_lat, end_lng, 10.0))
    assert stop_index > 0 and detour_index > stop_index, "the seed layer has no high-risk cell to stop in"
    return Track(route, positions, stop_index, detour_index)


def _stays_high(layer, lat: float, lng: float, t: float, high: float) -> bool:
    """High-risk for the whole stop (the local hour may change while the truck waits)."""
    cell = h3i.latlng_to_cell(lat, lng, layer.resolution)
    return all(cell_rate(layer, cell, Position(t + s, lat, lng)) >= high for s in range(0, STOP_S + 1, 600))


def _detour_ok(route: RoutePath, lat: float, lng: float) -> bool:
    """Where shifting east puts the truck well off the route (the road may run east–west)."""
    return distance_to_route_km(route, lat, lng + DETOUR_DEG) > 3.0


def write_track(path: Path) -> Path:
    """The test track as a GPX file with times and no speeds (the server derives them)."""
    track = build_track()
    gpx = gpxpy.gpx.GPX()
    segment = gpxpy.gpx.GPXTrackSegment()
    for p in track.positions:
        segment.points.append(gpxpy.gpx.GPXTrackPoint(p.lat, p.lng, time=datetime.fromtimestamp(p.time_s, UTC)))
    gpx_track = gpxpy.gpx.GPXTrack()
    gpx_track.segments.append(segment)
    gpx.tracks.append(gpx_track)
    path.write_text(gpx.to_xml())
    return path
