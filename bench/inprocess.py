"""routerisk in-process: layer build from a file, route decoding, route → cells, whole scoring."""

from __future__ import annotations

import gc
import json
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polyline as polyline_codec

from geodata.cells import route_to_cells
from geodata.incidents import IncidentSet
from geodata.ingest import read_incidents
from geodata.layer_store import LayerStore
from geodata.layers import RiskLayer, build_layer
from geodata.route import RoutePath, from_geojson, from_points, from_polyline


@dataclass(frozen=True)
class Timing:
    """Percentiles of repeated calls, in milliseconds."""

    p50_ms: float
    p99_ms: float
    runs: int


def sample(fn: Callable[[], object], runs: int, budget_s: float = 5.0) -> Timing:
    """Call ``fn`` after one warm-up until ``runs`` calls or ``budget_s`` seconds (at least 3 calls)."""
    fn()
    gc.collect()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < runs and (len(samples) < 3 or spent < budget_s):
        started = time.perf_counter()
        fn()
        took = time.perf_counter() - started
        samples.append(took * 1000)
        spent += took
    p50, p99 = np.percentile(samples, [50, 99])
    return Timing(float(p50), float(p99), len(samples))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class LayerFigures:
    incidents: int
    csv_mib: float
    cells: int
    ingest_s: float
    build_s: float
    write_activate_s: float
    load_ms: float
    peak_rss_mib: float


def build_from_file(csv_path: Path, store: LayerStore) -> tuple[IncidentSet, RiskLayer, LayerFigures]:
    """What ``routerisk layers build --activate`` does, timed step by step, then a server's load."""
    started = time.perf_counter()
    incidents, _ = read_incidents([csv_path])
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    layer = build_layer(incidents, name=f"bench-{len(incidents)}")
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    store.write(layer)
    store.activate(layer.version)
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded = store.load(layer.version)
    loaded.rates(loaded.cells[:1000], np.zeros(min(1000, len(loaded.cells)), dtype=np.int16))
    load_ms = (time.perf_counter() - started) * 1000
    figures = LayerFigures(
        len(incidents),
        csv_path.stat().st_size / 2**20,
        len(layer.cells),
        ingest_s,
        build_s,
        write_s,
        load_ms,
        peak_rss_mib(),
    )
    return incidents, layer, figures


def decode_figures(path: RoutePath, runs: int) -> dict[str, dict]:
    """Reading a route from each wire form, validation included."""
    points = list(zip(path.lat.tolist(), path.lng.tolist(), strict=True))
    encoded = polyline_codec.encode(points, 5)
    geojson = json.dumps({"type": "LineString", "coordinates": np.column_stack((path.lng, path.lat)).round(6).tolist()})
    big = 100_000
    big_lat = np.linspace(19.4326, 25.6866, big) + 0.01 * np.sin(np.arange(big) / 50)
    big_lng = np.linspace(-99.1332, -100.3161, big)
    cases = {
        f"encoded polyline, precision 5 ({len(path)} points)": lambda: from_polyline(encoded),
        f"GeoJSON LineString ({len(path)} points)": lambda: from_geojson(geojson),
        f"points ({len(path)})": lambda: from_points(path.lat, path.lng),
        f"points ({big:,})": lambda: from_points(big_lat, big_lng),
    }
    return {name: asdict(sample(fn, runs)) for name, fn in cases.items()}


def cells_figures(path: RoutePath, resolution: int, runs: int) -> tuple[Timing, int]:
    """Route → gap-free cell chain, and the chain's length."""
    return sample(lambda: route_to_cells(path, resolution), runs), len(route_to_cells(path, resolution))


def servicer_figures(layer: RiskLayer, border, requests_by_km: dict, runs: int) -> list[dict]:
    """``ScoreRoute`` called on the servicer itself, no gRPC: validation, cache key, cache, response.

    Cached: every request answered once before timing; uncached: no cache at all."""
    from service.config import Settings
    from service.grpc.servicer import RouteRiskServicer
    from service.store.cache import InProcessCache, NullCache
    from service.store.serving import ServingState

    state = ServingState()
    state.activate(layer, border)
    rows = []
    for cached in (True, False):
        servicer = RouteRiskServicer(state, Settings(), InProcessCache(10_000) if cached else NullCache())
        for km, requests in requests_by_km.items():
            for request in requests:
                servicer.ScoreRoute(request, None)
            turn = iter(range(10**9))
            timing = sample(lambda s=servicer, r=requests, t=turn: s.ScoreRoute(r[next(t) % len(r)], None), runs)
            rows.append({"km": km, "cache": "in-process" if cached else "none", **asdict(timing)})
    return rows
