"""GetCellRisk, ListHotspots and a score's hotspots say whether a cell is elevated by recent activity."""

from __future__ import annotations

import grpc
import h3
import numpy as np
import pytest

from geodata.adaptive import build_fitted_layer
from geodata.incidents import IncidentSet
from geodata.layer_store import LayerStore
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import load_data, start_server

DAY = 86400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
STEADY = [(19.34 + 0.05 * i, -98.93 - 0.07 * i) for i in range(12)]
BURST = (19.62, -99.21)


def incidents() -> tuple[IncidentSet, int]:
    """Steady places with near repeats over 900 days, and a fresh burst in the last 10 days."""
    rng = np.random.default_rng(8)
    lat, lng, t = [], [], []
    for a, b in STEADY:
        for when in rng.uniform(T0, T0 + 900 * DAY, rng.poisson(9)).tolist():
            for extra in [0.0, *rng.exponential(3.0, rng.poisson(3.0)).tolist()]:
                lat.append(a)
                lng.append(b)
                t.append(int(when + extra * DAY))
    end = max(t)
    burst = sorted(rng.uniform(end - 10 * DAY, end, 8).astype(np.int64).tolist())
    lat += [BURST[0]] * 8
    lng += [BURST[1]] * 8
    t += burst
    n = len(t)
    return (
        IncidentSet(
            ids=np.array([f"i{i}" for i in range(n)], dtype=object),
            lat=np.array(lat),
            lng=np.array(lng),
            utc_s=np.array(t, dtype=np.int64),
            local_how=(np.arange(n) % 168).astype(np.int16),
            violent=np.zeros(n, dtype=bool),
            types=np.array(["hijacking"] * n, dtype=object),
            sources=("test",),
        ),
        burst[0],
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data, since = incidents()
    layer, _ = build_fitted_layer(data, horizon_days=14, name="recent")
    store = LayerStore(tmp_path_factory.mktemp("store"))
    store.write(layer)
    store.activate(layer.version)
    settings = Settings(address="127.0.0.1:0", layer_dir=store.root)
    running = start_server(settings)
    load_data(running, settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.RouteRiskServiceStub(channel), since
    running.stop(0)


def test_cell_risk_says_elevated_since_the_first_recent_incident(served) -> None:
    stub, since = served
    hot = stub.GetCellRisk(pb.GetCellRiskRequest(location=pb.LatLng(latitude=BURST[0], longitude=BURST[1])), timeout=10)
    assert hot.recent_activity and hot.recent_share >= 0.25
    assert hot.recent_since.seconds == since
    steady = stub.GetCellRisk(pb.GetCellRiskRequest(cell=h3.latlng_to_cell(*STEADY[0], 8)), timeout=10)
    assert steady.recent_share < hot.recent_share
    if not steady.recent_activity:
        assert not steady.HasField("recent_since")


def test_hotspots_and_a_score_carry_it_too(served) -> None:
    stub, since = served
    box = pb.BoundingBox(west=BURST[1] - 0.05, south=BURST[0] - 0.05, east=BURST[1] + 0.05, north=BURST[0] + 0.05)
    page = stub.ListHotspots(pb.ListHotspotsRequest(bounds=box, top=5), timeout=10)
    top = {h.cell: h for h in page.hotspots}
    cell = h3.latlng_to_cell(*BURST, 8)
    assert top[cell].recent_activity and top[cell].recent_since.seconds == since
    route = pb.Route(
        line=pb.LineString(
            points=[
                pb.LatLng(latitude=BURST[0] - 0.01, longitude=BURST[1]),
                pb.LatLng(latitude=BURST[0] + 0.01, longitude=BURST[1]),
            ]
        )
    )
    scored = stub.ScoreRoute(pb.ScoreRouteRequest(route=route), timeout=10)
    spots = {h.cell: h for h in scored.hotspots}
    assert spots[cell].recent_activity and spots[cell].recent_since.seconds == since
    assert spots[cell].recent_share == pytest.approx(top[cell].recent_share)
