"""The data every contender gets: incidents along the seed corridors and routes on those roads.

Incidents are the synthetic seed incidents resampled with ±1 km and ±30 days of jitter, so
a larger file stays on the same freight corridors (a denser history of the same roads).
Routes follow the seed corridors from Nogales through Mexico City to Nuevo Laredo, densified
to about two vertices per km as a router's output would be; the ranking set adds windows
shifted off the road, so the set spans safe to dangerous routes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import seeds
from geodata.geometry import cumulative_km
from geodata.route import RoutePath, from_points

VERTICES_PER_KM = 2.0
# the corridors, in travel order, that make the 3,100 km tour (reversed ones run towards Mexico City)
TOUR = (("MEX-15D", True), ("MEX-57/57D, MEX-40D, MEX-85D", False))
# where the shorter routes start: Mexico City, heading north on 57D (the riskiest stretch)
SHORT_ROUTE_START = "mexico-city"
LATEST_INCIDENT_LOCAL = "2025-12-30T18:00:00"


@dataclass(frozen=True)
class BenchRoute:
    """A named route and what it is for."""

    name: str
    path: RoutePath
    km: float


def write_incidents(path: Path, count: int, seed: int = 11) -> None:
    """A canonical incident CSV of ``count`` rows resampled from the seed incidents."""
    base = pd.read_csv(seeds.INCIDENTS_CSV, dtype=str)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), count)
    rows = base.iloc[pick].reset_index(drop=True)
    text = rows["occurred_at"]
    naive = pd.to_datetime(text.str[:19], format="%Y-%m-%dT%H:%M:%S")  # local time; the offset follows
    shift = pd.to_timedelta(rng.integers(-30 * 86400, 30 * 86400, count), unit="s")
    moved = (naive + shift).clip(upper=pd.Timestamp(LATEST_INCIDENT_LOCAL))
    local = moved.dt.strftime("%Y-%m-%dT%H:%M:%S") + text.str[19:]
    jitter = rng.normal(0.0, 0.01, (2, count))
    out = pd.DataFrame(
        {
            "id": np.arange(count),
            "occurred_at": local,
            "latitude": (rows["latitude"].astype(float) + jitter[0]).round(5),
            "longitude": (rows["longitude"].astype(float) + jitter[1]).round(5),
            "type": rows["type"],
            "violent": rows["violent"],
            "source": "bench",
        }
    )
    out.to_csv(path, index=False)


def _corridor(name: str) -> tuple[np.ndarray, np.ndarray]:
    features = json.loads(seeds.CORRIDORS_GEOJSON.read_text(encoding="utf-8"))["features"]
    for feature in features:
        if feature["properties"]["highway"] == name:
            lng, lat = np.asarray(feature["geometry"]["coordinates"], dtype=np.float64).T
            return lat, lng
    raise KeyError(name)


def tour() -> tuple[np.ndarray, np.ndarray, float]:
    """Nogales → Mexico City → Nuevo Laredo as one polyline, and the km at Mexico City."""
    lats, lngs = [], []
    for name, reverse in TOUR:
        lat, lng = _corridor(name)
        if reverse:
            lat, lng = lat[::-1], lng[::-1]
        if lats:  # both corridors meet in Mexico City: drop the repeated first point
            lat, lng = lat[1:], lng[1:]
        lats.append(lat)
        lngs.append(lng)
    first = len(lats[0])
    lat, lng = np.concatenate(lats), np.concatenate(lngs)
    return lat, lng, float(cumulative_km(lat, lng)[first - 1])


def window(lat: np.ndarray, lng: np.ndarray, start_km: float, length_km: float, shift_deg: float = 0.0) -> RoutePath:
    """The stretch ``[start_km, start_km + length_km]`` of a polyline, densified, optionally moved."""
    along = cumulative_km(lat, lng)
    end_km = min(start_km + length_km, float(along[-1]))
    n = max(round((end_km - start_km) * VERTICES_PER_KM), 2)
    targets = np.linspace(start_km, end_km, n)
    return from_points(np.interp(targets, along, lat) + shift_deg, np.interp(targets, along, lng) + shift_deg)


def length_routes(lengths_km: list[float]) -> list[BenchRoute]:
    """One route per length: from Mexico City north when it fits, else from the start of the tour."""
    lat, lng, mexico_city_km = tour()
    total = float(cumulative_km(lat, lng)[-1])
    routes = []
    for km in lengths_km:
        start = mexico_city_km if mexico_city_km + km <= total else max(total - km, 0.0)
        path = window(lat, lng, start, km)
        routes.append(BenchRoute(f"{km:g} km", path, float(path.along_km[-1])))
    return routes


def ranking_routes(count: int, length_km: float = 100.0) -> list[BenchRoute]:
    """``count`` routes of ``length_km``: windows spread along the tour, half on the road, half moved
    0.1–0.3° off it, so the set holds safe and dangerous routes alike."""
    lat, lng, _ = tour()
    total = float(cumulative_km(lat, lng)[-1])
    starts = np.linspace(0.0, total - length_km, (count + 1) // 2)
    routes = []
    for i, start in enumerate(starts):
        routes.append(BenchRoute(f"on road @{start:.0f} km", window(lat, lng, start, length_km), length_km))
        shift = 0.1 + 0.2 * (i % 3) / 2
        routes.append(
            BenchRoute(f"{shift:.1f}° off @{start:.0f} km", window(lat, lng, start, length_km, shift), length_km)
        )
    return routes[:count]
