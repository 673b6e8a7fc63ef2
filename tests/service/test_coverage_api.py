"""Coverage through a real server: a route outside the layer's data gets no risk level, a partly
covered one keeps its score and says what was not covered, and a polyline of the other precision
is refused with a hint."""

from __future__ import annotations

import itertools

import grpc
import polyline as polyline_codec
import pytest

from geodata.geometry import haversine_km
from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import assert_invalid, demo_request, line_request

CALIFORNIA = [(34.05, -118.24), (34.40, -118.00), (35.37, -119.02)]  # Los Angeles → Bakersfield
PARIS_LYON = [(48.8566, 2.3522), (47.32, 4.83), (45.764, 4.8357)]
README_POLYLINE = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"  # the polyline documentation's example: California
# Monterrey → Nuevo Laredo, well inside the seed layer's coverage (Mexico)
MONTERREY_NUEVO_LAREDO = [(25.68, -100.31), (26.50, -99.90), (27.45, -99.55)]
# over the 31°20' N line between Sonora/Chihuahua and Arizona/New Mexico and back, twice, mostly
# south of it (no commercial port within 15 km: no crossing, no wait)
ZIGZAG = [(31.00, -108.95), (31.42, -108.80), (31.00, -108.65), (31.42, -108.50), (31.00, -108.35)]
LINE_LAT = 31 + 20 / 60


@pytest.mark.parametrize("points", [CALIFORNIA, PARIS_LYON], ids=["california", "paris-lyon"])
def test_a_route_outside_the_coverage_has_no_risk_level(stub, points):
    response = stub.ScoreRoute(line_request(points), timeout=60)
    assert response.level == pb.RISK_LEVEL_NOT_COVERED
    assert response.covered_fraction == 0.0
    [stretch] = response.uncovered_stretches
    assert stretch.start_km == 0.0
    assert stretch.end_km == pytest.approx(response.distance_km)
    assert (stretch.start.latitude, stretch.start.longitude) == pytest.approx(points[0])


def test_the_documented_polyline_is_not_covered(stub):
    request = pb.ScoreRouteRequest()
    request.route.encoded_polyline = README_POLYLINE
    response = stub.ScoreRoute(request, timeout=60)
    assert response.level == pb.RISK_LEVEL_NOT_COVERED
    assert response.covered_fraction == 0.0


def test_a_route_inside_the_coverage_is_fully_covered(stub):
    response = stub.ScoreRoute(line_request(MONTERREY_NUEVO_LAREDO), timeout=60)
    assert response.covered_fraction == 1.0
    assert list(response.uncovered_stretches) == []
    assert response.level != pb.RISK_LEVEL_NOT_COVERED


def test_the_us_stretch_after_laredo_keeps_the_score_and_is_listed(stub):
    response = stub.ScoreRoute(demo_request("mexico-city_laredo"), timeout=60)
    assert response.level not in (pb.RISK_LEVEL_NOT_COVERED, pb.RISK_LEVEL_UNSPECIFIED)
    assert response.score > 0
    assert 0.99 < response.covered_fraction < 1.0
    [stretch] = response.uncovered_stretches
    assert stretch.end_km == pytest.approx(response.distance_km)
    # it starts on the US side, within a coverage cell (~2.5 km) of the World Trade Bridge
    assert stretch.start.latitude > 27.59
    uncovered_km = stretch.end_km - stretch.start_km
    assert uncovered_km == pytest.approx((1 - response.covered_fraction) * response.distance_km, rel=1e-6)


def test_every_excursion_over_the_edge_is_its_own_stretch(stub):
    response = stub.ScoreRoute(line_request(ZIGZAG), timeout=60)
    stretches = list(response.uncovered_stretches)
    assert len(stretches) == 2
    for stretch, peak_km in zip(stretches, (_km_to(ZIGZAG, 1), _km_to(ZIGZAG, 3)), strict=True):
        assert stretch.start_km < peak_km < stretch.end_km
        # the ends lie at the line, to within a coverage cell (resolution 7: ~0.03°)
        assert stretch.start.latitude == pytest.approx(LINE_LAT, abs=0.03)
        assert stretch.end.latitude == pytest.approx(LINE_LAT, abs=0.03)
    assert list(response.crossings) == []
    assert response.level != pb.RISK_LEVEL_NOT_COVERED  # mostly in Mexico


def test_batches_and_comparisons_carry_coverage(stub):
    requests = [line_request(CALIFORNIA), line_request(MONTERREY_NUEVO_LAREDO)]
    results = stub.BatchScoreRoutes(pb.BatchScoreRoutesRequest(requests=requests), timeout=60).results
    assert [r.response.level == pb.RISK_LEVEL_NOT_COVERED for r in results] == [True, False]
    ranked = stub.CompareRoutes(pb.CompareRoutesRequest(alternatives=requests, risk_weight=1.0), timeout=60)
    # the uncovered route's low score is not "lowest risk": the covered one is recommended
    assert ranked.recommended_index == 1
    assert ranked.ranked[1].result.covered_fraction == 0.0


def test_a_precision_5_polyline_sent_as_precision_6_is_refused_with_a_hint(stub):
    request = pb.ScoreRouteRequest()
    request.route.encoded_polyline6 = polyline_codec.encode(MONTERREY_NUEVO_LAREDO, 5)
    assert_invalid(stub.ScoreRoute, request, "route.encoded_polyline6", "did you mean encoded_polyline ", "2.568")


def test_a_precision_6_polyline_sent_as_precision_5_is_refused_with_a_hint(stub):
    request = pb.ScoreRouteRequest()
    request.route.encoded_polyline = polyline_codec.encode(MONTERREY_NUEVO_LAREDO, 6)
    assert_invalid(stub.ScoreRoute, request, "route.encoded_polyline", "did you mean encoded_polyline6")
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreRoute(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_route_outside_coverage_at_both_precisions_is_scored_not_refused(stub):
    request = pb.ScoreRouteRequest()
    request.route.encoded_polyline6 = polyline_codec.encode(CALIFORNIA, 6)
    assert stub.ScoreRoute(request, timeout=60).level == pb.RISK_LEVEL_NOT_COVERED


def _km_to(points: list[tuple[float, float]], index: int) -> float:
    """Distance along ``points`` to the one at ``index``."""
    legs = itertools.pairwise(points[: index + 1])
    return float(sum(haversine_km(a[0], a[1], b[0], b[1]) for a, b in legs))
