"""Geometry edge cases end to end: each route through the real server gives a sane score, or
INVALID_ARGUMENT naming the field. (The cell-chain properties of the same shapes are in
``test_cells.py``; here the whole request path is exercised: decode, validate, cells, time
zones, scoring, response.)"""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import h3
import numpy as np
import polyline as polyline_codec
import pytest

from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import DEPARTURE, assert_invalid, line_request
from tools.reliability.figures import record

SEEN: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _record_figures() -> Iterator[None]:
    """The figures of the cases seen, once every test of this module has run (in any order)."""
    yield
    if SEEN:
        record("geometry-edges", cases=len(SEEN), outcomes=dict(sorted(SEEN.items())))


def score(stub, request: pb.ScoreRouteRequest, case: str) -> pb.ScoreRouteResponse:
    response = stub.ScoreRoute(request, timeout=120)
    assert 0.0 <= response.score <= 100.0
    assert math.isfinite(response.expected_incidents) and response.expected_incidents >= 0
    assert response.cell_count >= 1 and response.distance_km > 0
    assert response.arrival_time.ToDatetime() >= response.departure_time.ToDatetime()
    SEEN[case] = "score"
    return response


def essentials(response: pb.ScoreRouteResponse) -> tuple:
    return (response.score, response.expected_incidents, response.cell_count, round(response.distance_km, 9))


def test_across_the_antimeridian_is_short(stub):
    response = score(stub, line_request([(10.0, 179.9), (10.0, -179.9)]), "antimeridian")
    assert 20 < response.distance_km < 23  # the short way, not 39,000 km round the other side


def test_over_the_north_pole_and_at_the_south_pole(stub):
    over = score(stub, line_request([(89.5, 0.0), (89.5, 180.0)]), "over the pole")
    assert 110 < over.distance_km < 112  # 1° of latitude, through the pole
    at = score(stub, line_request([(-90.0, 0.0), (-89.0, 45.0)]), "at the pole")
    assert 110 < at.distance_km < 112


def test_through_pentagons(stub):
    for resolution in (8, 0):
        pentagon = sorted(h3.get_pentagons(resolution))[3]
        lat, lng = h3.cell_to_latlng(pentagon)
        request = line_request([(lat - 0.05, lng - 0.05), (lat, lng), (lat + 0.05, lng + 0.05)])
        response = score(stub, request, f"pentagon res {resolution}")
        assert 12 < response.distance_km < 17


def test_zero_length_segments_and_repeated_points_change_nothing(stub):
    plain = [(20.40, -100.20), (20.60, -100.25), (20.90, -100.20)]
    doubled = [plain[0], plain[0], plain[1], plain[1], plain[1], plain[2], plain[2]]
    a = score(stub, line_request(plain), "repeated points")
    b = score(stub, line_request(doubled), "zero-length segments")
    assert essentials(a) == essentials(b)


def test_all_points_identical_is_a_clear_error(stub):
    assert_invalid(stub.ScoreRoute, line_request([(20.4, -100.2)] * 5), "route.line.points", "distinct")
    SEEN["identical points"] = "INVALID_ARGUMENT"


def test_antipodal_consecutive_points_are_a_clear_error(stub):
    assert_invalid(stub.ScoreRoute, line_request([(10.0, 20.0), (-10.0, -160.0)]), "route.line.points[1]", "antipodal")
    SEEN["antipodal"] = "INVALID_ARGUMENT"


def test_a_tiny_route_inside_one_cell(stub):
    response = score(stub, line_request([(20.4, -100.2), (20.4000001, -100.2)]), "tiny")
    assert response.cell_count == 1 and response.distance_km < 0.0001


def test_a_zig_zag_scores_its_whole_length(stub):
    points = [(20.40 + (i % 2) * 0.01, -100.20) for i in range(1_001)]  # 1,000 legs of 1.11 km
    response = score(stub, line_request(points), "zig-zag")
    assert 1_100 < response.distance_km < 1_125


def test_round_the_world_along_the_equator(stub):
    points = [(0.0, lng) for lng in (0.0, 90.0, 180.0, -90.0, 0.0)]
    response = score(stub, line_request(points, average_speed_kmh=150.0), "round the world")
    assert 40_000 < response.distance_km < 40_100


def test_a_100000_point_route_is_scored_in_every_encoding(stub):
    n = 100_000
    lat = np.linspace(19.40, 27.50, n)  # Mexico City → Nuevo Laredo, straight, ~1,000 km
    lng = np.linspace(-99.10, -99.50, n)
    points = list(zip(lat.round(6).tolist(), lng.round(6).tolist(), strict=True))
    by_line = score(stub, line_request(points), "100,000 points (line)")
    request = pb.ScoreRouteRequest()
    request.route.encoded_polyline6 = polyline_codec.encode(points, 6)
    request.departure_time.FromDatetime(DEPARTURE)
    by_polyline = score(stub, request, "100,000 points (polyline6)")
    assert essentials(by_line) == essentials(by_polyline)
    assert 890 < by_line.distance_km < 920


def test_one_point_past_the_limit_names_the_field(stub):
    points = [(19.0 + i * 1e-5, -99.0) for i in range(100_001)]
    assert_invalid(stub.ScoreRoute, line_request(points), "route.line.points", "100001 points", "100000")
    SEEN["100,001 points"] = "INVALID_ARGUMENT"


def test_coordinates_at_their_limits(stub):
    score(stub, line_request([(90.0, 180.0), (89.0, 180.0)]), "limits ±90/±180")
    score(stub, line_request([(0.0, -180.0), (0.5, 180.0)]), "±180 is one meridian")
    with pytest.raises(grpc.RpcError):
        stub.ScoreRoute(line_request([(90.0000001, 0.0), (89.0, 0.0)]), timeout=30)
    SEEN["just past 90"] = "INVALID_ARGUMENT"


def test_distance_to_an_arc_is_to_its_nearest_point_or_its_nearer_end():
    from geodata.geometry import EARTH_RADIUS_KM, distance_to_arc_km, haversine_km

    a, b = (20.0, -100.0), (22.0, -100.0)  # 222 km along a meridian
    one_degree_east = (21.0, -100.0 + 1.0)
    beyond_the_end = (23.0, -100.0)
    got = distance_to_arc_km(
        np.array([one_degree_east[0], beyond_the_end[0]]), np.array([one_degree_east[1], beyond_the_end[1]]), a, b
    )
    # off the meridian by the angle whose sine is cos(21°)·sin(1°): less than the 1° of longitude at 21° N
    expected = np.arcsin(np.cos(np.radians(21.0)) * np.sin(np.radians(1.0))) * EARTH_RADIUS_KM
    assert got[0] == pytest.approx(expected, rel=1e-9)
    assert got[1] == pytest.approx(float(haversine_km(23.0, -100.0, 22.0, -100.0)), rel=1e-9)
