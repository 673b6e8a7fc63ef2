"""Benchmark of whole scoring: in-process and through a real gRPC channel.

Run from the repository root::

    python bench/bench_scoring.py [--runs 300]

Routes: the synthetic 1,000 km / 2,000-vertex route of ``bench_route.py`` and the demo
route Mexico City → Laredo resampled to 2,000 vertices, scored on the seed layer.
Prints p50/p99 per case; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

import seeds
from bench.bench_route import synthetic_route, timeit
from geodata.border import load_border_data
from geodata.cells import route_to_cells
from geodata.geometry import cumulative_km
from geodata.route import RoutePath, from_file, from_points
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.scoring import ModelOptions, ScoreQuery, score_route
from service.server import load_data, start_server
from service.state import build_seed_layer

DEPARTURE_S = 1_741_752_000  # 2025-03-12T04:00:00Z, 22:00 in Mexico City


def resampled(path: RoutePath, n: int) -> RoutePath:
    """``path`` with ``n`` vertices evenly spaced along it (linear between vertices)."""
    along = cumulative_km(path.lat, path.lng)
    targets = np.linspace(0.0, along[-1], n)
    return from_points(np.interp(targets, along, path.lat), np.interp(targets, along, path.lng))


def request_for(path: RoutePath) -> pb.ScoreRouteRequest:
    request = pb.ScoreRouteRequest()
    request.route.line.points.extend(
        pb.LatLng(latitude=a, longitude=b) for a, b in zip(path.lat, path.lng, strict=True)
    )
    request.departure_time.FromSeconds(DEPARTURE_S)
    return request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    runs = parser.parse_args().runs

    started = time.perf_counter()
    layer = build_seed_layer()
    build_s = time.perf_counter() - started
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    routes = {
        "synthetic 1,000 km / 2,000 vertices": from_points(*synthetic_route()),
        "Mexico City → Laredo, 2,000 vertices": resampled(from_file(seeds.DEMO_ROUTES["mexico-city_laredo"]), 2000),
    }
    rows = [("seed layer build (20,000 incidents)", build_s * 1e6, float("nan"))]
    for name, path in routes.items():
        query = ScoreQuery(path, DEPARTURE_S, 60.0)
        rows.append((f"route → cells: {name}", *timeit(lambda p=path: route_to_cells(p, 8), runs)))
        rows.append(
            (f"score in-process: {name}", *timeit(lambda q=query: score_route(q, layer, border, ModelOptions()), runs))
        )

    for cached in (False, True):
        settings = Settings(address="127.0.0.1:0", cache_max_entries=10_000 if cached else 0, log_level="WARNING")
        running = start_server(settings)
        load_data(running, settings)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            for name, path in routes.items():
                request = request_for(path)
                label = f"gRPC ScoreRoute {'cached' if cached else 'uncached'}: {name}"
                rows.append((label, *timeit(lambda r=request, s=stub: s.ScoreRoute(r, timeout=30), runs)))
        running.stop(0)

    print(f"{'case':<72} {'p50 µs':>10} {'p99 µs':>10}")
    for name, p50, p99 in rows:
        print(f"{name:<72} {p50:>10.0f} {p99:>10.0f}")


if __name__ == "__main__":
    main()
