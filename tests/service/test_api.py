"""The server through a real gRPC channel: scoring, batches, cells, crossings, bad input."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import grpc
import h3
import polyline as polyline_codec
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import QUERETARO, assert_invalid, demo_request, line_request, violations_of

# ------------------------------------------------------------------ scoring


@pytest.mark.parametrize(
    ("name", "port_name"),
    [
        ("mexico-city_laredo", "Laredo"),
        ("tijuana_otay-mesa", "Otay Mesa"),
        ("ciudad-juarez_el-paso", "El Paso"),
    ],
)
def test_cross_border_demo_routes_find_their_port(stub, name, port_name):
    response = stub.ScoreRoute(demo_request(name), timeout=60)
    assert 0 <= response.score <= 100
    assert len(response.crossings) == 1
    crossing = response.crossings[0]
    assert crossing.port_name == port_name
    assert crossing.direction == pb.CROSSING_DIRECTION_NORTHBOUND
    assert crossing.wait_source == pb.WAIT_SOURCE_DEFAULT
    assert crossing.expected_wait_minutes >= 0
    assert response.queue_expected_incidents == pytest.approx(crossing.expected_incidents)
    assert 0 <= response.queue_expected_incidents <= response.expected_incidents
    drive_s = response.distance_km / 60.0 * 3600
    total_s = response.duration.ToTimedelta().total_seconds()
    assert total_s == pytest.approx(drive_s + crossing.expected_wait_minutes * 60, rel=1e-6, abs=1)


def test_laredo_route_crosses_at_world_trade_bridge(stub):
    crossing = stub.ScoreRoute(demo_request("mexico-city_laredo"), timeout=60).crossings[0]
    assert "World Trade" in crossing.crossing_name


def test_domestic_route_has_no_crossing(stub):
    response = stub.ScoreRoute(demo_request("manzanillo_guadalajara"), timeout=60)
    assert list(response.crossings) == []
    assert response.distance_km > 200
    assert response.layer_synthetic is True
    assert response.layer_version.startswith("seed-")


def test_long_corridor_route_has_reasons(stub):
    response = stub.ScoreRoute(demo_request("mexico-city_laredo"), timeout=60)
    assert response.distance_km > 1000
    assert response.expected_incidents > 0
    assert response.incident_probability == pytest.approx(-math.expm1(-response.expected_incidents))
    assert response.segments and response.hotspots
    assert all(0 < s.share <= 1 for s in response.segments)
    assert [s.start_km for s in response.segments] == sorted(s.start_km for s in response.segments)
    risks = [h.expected_incidents for h in response.hotspots]
    assert risks == sorted(risks, reverse=True)
    for hotspot in response.hotspots:
        assert h3.is_valid_cell(hotspot.cell) and h3.get_resolution(hotspot.cell) == response.resolution
    assert response.cell_count > 1000
    assert response.arrival_time.ToDatetime() > response.departure_time.ToDatetime()


def test_same_request_same_response_and_second_is_cached(stub):
    # a route no other test sends: the session's server may have cached QUERETARO already
    request = line_request([(20.41, -100.21), (20.87, -100.19)], reference="load-42")
    first = stub.ScoreRoute(request, timeout=30)
    second = stub.ScoreRoute(request, timeout=30)
    assert not first.cached and second.cached
    assert second.reference == "load-42"
    second.cached = False
    assert first == second


def test_polyline_geojson_and_line_agree(stub):
    encoded = polyline_codec.encode(QUERETARO, 5)
    by_line = stub.ScoreRoute(line_request(QUERETARO), timeout=30)
    by_polyline = stub.ScoreRoute(
        pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=encoded), departure_time=by_line.departure_time),
        timeout=30,
    )
    geojson = '{"type": "LineString", "coordinates": [[-100.2, 20.4], [-100.2, 20.9]]}'
    by_geojson = stub.ScoreRoute(
        pb.ScoreRouteRequest(route=pb.Route(geojson=geojson), departure_time=by_line.departure_time), timeout=30
    )
    for other in (by_polyline, by_geojson):
        assert other.score == pytest.approx(by_line.score)
        assert other.cell_count == by_line.cell_count


def test_fast_lane_waits_less_than_standard(stub):
    standard = stub.ScoreRoute(demo_request("tijuana_otay-mesa", crossing_lane=pb.CROSSING_LANE_STANDARD), timeout=30)
    fast = stub.ScoreRoute(demo_request("tijuana_otay-mesa", crossing_lane=pb.CROSSING_LANE_FAST), timeout=30)
    assert fast.crossings[0].lane == pb.CROSSING_LANE_FAST
    assert fast.crossings[0].expected_wait_minutes <= standard.crossings[0].expected_wait_minutes


def test_default_departure_is_now(stub):
    request = line_request(QUERETARO)
    request.ClearField("departure_time")
    before = datetime.now(UTC) - timedelta(seconds=2)
    response = stub.ScoreRoute(request, timeout=30)
    assert before <= response.departure_time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC) + timedelta(seconds=2)


def test_batch_keeps_order_and_isolates_bad_routes(stub):
    good = line_request(QUERETARO, reference="a")
    bad = line_request([(20.4, -100.2), (95.0, -100.2)], reference="b")
    other = demo_request("manzanillo_guadalajara", reference="c")
    reply = stub.BatchScoreRoutes(pb.BatchScoreRoutesRequest(requests=[good, bad, other]), timeout=60)
    kinds = [r.WhichOneof("result") for r in reply.results]
    assert kinds == ["response", "error", "response"]
    assert reply.results[0].response.reference == "a"
    assert reply.results[2].response.reference == "c"
    error = reply.results[1].error
    assert error.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert error.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "route.line.points[1].latitude"
    single = stub.ScoreRoute(good, timeout=30)
    assert reply.results[0].response.score == pytest.approx(single.score)


def test_batch_over_the_limit_is_rejected(stub):
    request = pb.BatchScoreRoutesRequest(requests=[line_request(QUERETARO)] * 1001)
    assert_invalid(stub.BatchScoreRoutes, request, "requests", "1001", "1000")


# ------------------------------------------------------------------ cells and crossings


def test_cell_risk_by_location_and_by_cell_agree(stub):
    by_location = stub.GetCellRisk(
        pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.6, longitude=-99.2)), timeout=10
    )
    assert h3.get_resolution(by_location.cell) == by_location.resolution
    by_cell = stub.GetCellRisk(pb.GetCellRiskRequest(cell=by_location.cell), timeout=10)
    assert by_cell.risk == pytest.approx(by_location.risk)
    assert len(by_cell.hour_of_week_risk) == 168
    assert by_cell.hour_of_week == -1
    assert by_cell.time_zone == "America/Mexico_City"


def test_cell_risk_at_a_time_uses_local_hour(stub):
    request = pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.6, longitude=-99.2))
    request.time.FromDatetime(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))  # Monday 02:00 in Mexico City
    response = stub.GetCellRisk(request, timeout=10)
    assert response.hour_of_week == 2
    assert response.risk == pytest.approx(response.hour_of_week_risk[2])


def test_finer_cell_maps_to_its_parent(stub):
    fine = h3.latlng_to_cell(19.6, -99.2, 11)
    response = stub.GetCellRisk(pb.GetCellRiskRequest(cell=fine), timeout=10)
    assert response.cell == h3.cell_to_parent(fine, response.resolution)


def test_the_hottest_seed_cell_reports_its_incidents(stub, server):
    layer = server.state.snapshot.layer
    row = int(layer.incident_count.argmax())
    cell = h3.int_to_str(int(layer.cells[row]))
    response = stub.GetCellRisk(pb.GetCellRiskRequest(cell=cell), timeout=10)
    assert response.incident_count == int(layer.incident_count[row]) > 0
    assert response.last_incident_time.seconds == int(layer.last_incident_s[row])
    assert response.level >= pb.RISK_LEVEL_LOW


def test_list_border_crossings(stub):
    reply = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10)
    names = {c.port_name for c in reply.crossings}
    assert {"Otay Mesa", "Laredo", "El Paso"} <= names
    assert reply.border_data_version.startswith("border-")
    for crossing in reply.crossings:
        assert [w.lane for w in crossing.lane_waits] == [pb.CROSSING_LANE_STANDARD, pb.CROSSING_LANE_FAST]
        assert all(w.source == pb.WAIT_SOURCE_DEFAULT for w in crossing.lane_waits)
    one = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(port_number="250602"), timeout=10)
    assert [c.port_name for c in one.crossings] == ["Otay Mesa"]


def test_unknown_port_is_not_found(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(port_number="999999"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("points", "field", "texts"),
    [
        ([(20.4, -100.2), (91.0, -100.2)], "route.line.points[1].latitude", ("91",)),
        ([(20.4, -100.2), (20.5, -181.0)], "route.line.points[1].longitude", ("-181",)),
        ([(math.nan, -100.2), (20.5, -100.2)], "route.line.points[0].latitude", ("nan",)),
        ([(20.4, -100.2), (20.5, math.inf)], "route.line.points[1].longitude", ("inf",)),
        ([(-100.2, 20.4), (-100.3, 20.5)], "route.line.points[0].latitude", ("swapped",)),
        ([(20.4, -100.2), (20.4, -100.2)], "route.line.points", ("two distinct",)),
        ([(20.4, -100.2)], "route.line.points", ("two distinct",)),
    ],
)
def test_bad_coordinates(stub, points, field, texts):
    assert_invalid(stub.ScoreRoute, line_request(points), field, *texts)


def test_too_many_points(stub):
    points = [(20.0 + i * 1e-5, -100.0) for i in range(100_001)]
    assert_invalid(stub.ScoreRoute, line_request(points), "route.line.points", "100001", "100000")


@pytest.mark.parametrize(
    ("route", "field"),
    [
        (pb.Route(encoded_polyline="\x01\x02~~~"), "route.encoded_polyline"),
        (pb.Route(encoded_polyline6="_p~iF~ps|U_ulL"), "route.encoded_polyline6"),
        (pb.Route(geojson='{"type": "Point", "coordinates": [-100.2, 20.4]}'), "route.geojson"),
        (pb.Route(geojson="{not json"), "route.geojson"),
        (pb.Route(), "route"),
    ],
)
def test_bad_geometry(stub, route, field):
    request = pb.ScoreRouteRequest(route=route)
    assert_invalid(stub.ScoreRoute, request, field)


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(1999, 12, 31, tzinfo=UTC), "before 2000"),
        (datetime.now(UTC) + timedelta(days=400), "year ahead"),
    ],
)
def test_bad_departure(stub, when, text):
    request = line_request(QUERETARO)
    request.departure_time.FromDatetime(when)
    assert_invalid(stub.ScoreRoute, request, "departure_time", text)


def test_past_departure_is_allowed(stub):
    request = line_request(QUERETARO)
    request.departure_time.FromDatetime(datetime(2019, 5, 1, tzinfo=UTC))
    assert stub.ScoreRoute(request, timeout=30).departure_time.seconds == request.departure_time.seconds


@pytest.mark.parametrize("speed", [-10.0, 150.5, math.nan, math.inf])
def test_bad_speed(stub, speed):
    assert_invalid(stub.ScoreRoute, line_request(QUERETARO, average_speed_kmh=speed), "average_speed_kmh")


@pytest.mark.parametrize("speed", [1e-10, 1e-300, 5e-324])
def test_a_trip_too_long_to_date_is_rejected_naming_the_speed(stub, speed):
    """A tiny positive speed made the trip outlast any date the model can place (INTERNAL)."""
    assert_invalid(stub.ScoreRoute, line_request(QUERETARO, average_speed_kmh=speed), "average_speed_kmh", "trip")


def test_a_long_but_datable_trip_is_scored(stub):
    response = stub.ScoreRoute(line_request(QUERETARO, average_speed_kmh=0.01), timeout=30)  # 56 km in 7 months
    assert response.duration.seconds > 180 * 86_400


def test_unknown_lane_enum(stub):
    assert_invalid(stub.ScoreRoute, line_request(QUERETARO, crossing_lane=7), "crossing_lane", "7")


def test_bad_stop(stub):
    request = line_request(QUERETARO)
    request.stops.add(location=pb.LatLng(latitude=120, longitude=-100.2))
    request.stops[0].dwell.FromSeconds(-5)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreRoute(request, timeout=30)
    fields = {v.field for v in violations_of(caught.value)}
    assert {"stops[0].location.latitude", "stops[0].dwell"} <= fields


def test_every_violation_is_reported_at_once(stub):
    request = line_request([(20.4, -100.2), (91.0, -100.2)], average_speed_kmh=-1, crossing_lane=9)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreRoute(request, timeout=30)
    fields = {v.field for v in violations_of(caught.value)}
    assert {"route.line.points[1].latitude", "average_speed_kmh", "crossing_lane"} <= fields


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetCellRiskRequest(cell="not-a-cell"), "cell"),
        (pb.GetCellRiskRequest(cell="10000000000000000"), "cell"),  # hex beyond 64 bits (fuzzing found it)
        (pb.GetCellRiskRequest(cell=h3.latlng_to_cell(19.6, -99.2, 5)), "cell"),
        (pb.GetCellRiskRequest(location=pb.LatLng(latitude=-91, longitude=0)), "location.latitude"),
        (pb.GetCellRiskRequest(), "target"),
    ],
)
def test_bad_cell_requests(stub, request_, field):
    assert_invalid(stub.GetCellRisk, request_, field)


# ------------------------------------------------------------------ health, reflection, JSON


def test_health_reports_serving(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "routerisk.v1.RouteRiskService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel):
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(iter(reflection.ServerReflectionInfo(iter([request]), timeout=5)))
    names = {s.name for s in reply.list_services_response.service}
    assert "routerisk.v1.RouteRiskService" in names
    assert "grpc.health.v1.Health" in names


def test_response_json_uses_canonical_names(stub):
    response = stub.ScoreRoute(demo_request("tijuana_otay-mesa"), timeout=30)
    text = json_format.MessageToJson(response)
    assert '"layerVersion"' in text and '"crossings"' in text
    assert '"WAIT_SOURCE_DEFAULT"' in text


def test_not_serving_until_layers_are_loaded():
    """Before data is loaded: health NOT_SERVING and scoring UNAVAILABLE (never INTERNAL)."""
    from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
    from service.config import Settings
    from service.grpc.server import load_data, start_server

    settings = Settings(address="127.0.0.1:0")
    running = start_server(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.RouteRiskServiceStub(ch).ScoreRoute(line_request(QUERETARO), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            load_data(running, settings)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop(0)
