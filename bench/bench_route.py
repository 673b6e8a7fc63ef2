"""Micro-benchmark of the route hot path: decode/validate and route → H3 cell chain.

Run from the repository root::

    python bench/bench_route.py [--runs 300] [--resolution 8]

The route is synthetic but realistic: 2,000 vertices, 1,000 km, wandering north from
Mexico City with a slowly drifting heading (like a highway to Monterrey).  Prints
p50/p99 per operation; it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polyline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geodata.cells import route_to_cells
from geodata.geometry import EARTH_RADIUS_KM
from geodata.route import from_geojson, from_points, from_polyline


def synthetic_route(n: int = 2000, length_km: float = 1000.0, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A wiggly path of ``n`` vertices and ``length_km`` from Mexico City, heading north."""
    rng = np.random.default_rng(seed)
    step = length_km / (n - 1) / EARTH_RADIUS_KM  # radians per segment
    # Heading: north-ish with slow drift (smoothed random walk) and small wiggles.
    drift = np.convolve(rng.normal(0.0, 0.08, n), np.ones(25) / 25, mode="same").cumsum()
    heading = np.radians(-15.0) + 0.6 * np.tanh(drift) + 0.15 * np.sin(np.arange(n) / 9.0)
    lat = np.empty(n)
    lng = np.empty(n)
    lat[0], lng[0] = math.radians(19.4326), math.radians(-99.1332)
    for i in range(1, n):  # great-circle destination point
        p, h = lat[i - 1], heading[i - 1]
        lat[i] = math.asin(math.sin(p) * math.cos(step) + math.cos(p) * math.sin(step) * math.cos(h))
        lng[i] = lng[i - 1] + math.atan2(
            math.sin(h) * math.sin(step) * math.cos(p), math.cos(step) - math.sin(p) * math.sin(lat[i])
        )
    return np.degrees(lat), np.degrees(lng)


def timeit(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(p50, p99) in microseconds."""
    fn()  # warm-up
    gc.collect()
    samples = np.empty(runs)
    for k in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        samples[k] = time.perf_counter_ns() - t0
    p50, p99 = np.percentile(samples, [50, 99]) / 1e3
    return float(p50), float(p99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--resolution", type=int, default=8)
    args = parser.parse_args()

    lat, lng = synthetic_route()
    path = from_points(lat, lng)
    chain = route_to_cells(path, args.resolution)
    pl5 = polyline.encode(list(zip(lat.tolist(), lng.tolist(), strict=True)), 5)
    pl6 = polyline.encode(list(zip(lat.tolist(), lng.tolist(), strict=True)), 6)
    geojson = json.dumps({"type": "LineString", "coordinates": np.column_stack((lng, lat)).round(6).tolist()})
    big_n = 100_000
    big_lat = np.linspace(19.4326, 25.6866, big_n) + 0.01 * np.sin(np.arange(big_n) / 50)
    big_lng = np.linspace(-99.1332, -100.3161, big_n)

    rows = [
        (f"route → cells (res {args.resolution}, 2,000 vertices)", lambda: route_to_cells(path, args.resolution)),
        ("polyline p5 decode+validate (2,000 pts)", lambda: from_polyline(pl5)),
        ("polyline p6 decode+validate (2,000 pts)", lambda: from_polyline(pl6, precision=6)),
        ("GeoJSON decode+validate (2,000 pts)", lambda: from_geojson(geojson)),
        ("from_points validate (2,000 pts)", lambda: from_points(lat, lng)),
        ("from_points validate (100,000 pts)", lambda: from_points(big_lat, big_lng)),
    ]
    print(
        f"route: {len(path)} vertices, {chain.total_km:.1f} km, {len(chain)} cells at res {args.resolution} "
        f"({args.runs} runs each, python {sys.version.split()[0]}, numpy {np.__version__})"
    )
    print(f"{'operation':48s} {'p50 µs':>10s} {'p99 µs':>10s}")
    print("-" * 70)
    for name, fn in rows:
        p50, p99 = timeit(fn, args.runs)
        print(f"{name:48s} {p50:10.1f} {p99:10.1f}")


if __name__ == "__main__":
    main()
