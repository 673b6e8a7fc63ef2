"""One behaviour, two transports: the same requests over gRPC and over Connect JSON get the same
answers and the same errors (code and field violations), hostile inputs included."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import MEXICO_CITY_BOX, QUERETARO, demo_request, line_request, violations_of

DEEP = '{"type": "LineString", "coordinates": ' + "[" * 1000 + "]" * 1000 + "}"
FAR_BOX = pb.BoundingBox(west=-118.0, south=14.0, east=-86.0, north=33.0)


def _score(**fields) -> pb.ScoreRouteRequest:
    return line_request(QUERETARO, **fields)


def _geometry(**route) -> pb.ScoreRouteRequest:
    request = pb.ScoreRouteRequest(route=pb.Route(**route))
    request.departure_time.FromSeconds(1_741_752_000)
    return request


def _departures(**fields) -> pb.SuggestDeparturesRequest:
    return pb.SuggestDeparturesRequest(trip=_score(), **fields)


CASES: list[tuple[str, Message]] = [
    # answers
    ("ScoreRoute", _score()),
    ("ScoreRoute", demo_request("mexico-city_laredo", reference="load-17")),
    ("BatchScoreRoutes", pb.BatchScoreRoutesRequest(requests=[_score(), _geometry(encoded_polyline="~~~~")])),
    ("GetCellRisk", pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.43, longitude=-99.13))),
    ("ListHotspots", pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, page_size=5)),
    ("ListBorderCrossings", pb.ListBorderCrossingsRequest(time=line_request(QUERETARO).departure_time)),
    ("CompareRoutes", pb.CompareRoutesRequest(alternatives=[_score(), demo_request("mexico-city_laredo")])),
    ("SuggestDepartures", _departures()),
    ("ExportAvoidAreas", pb.ExportAvoidAreasRequest(bounds=MEXICO_CITY_BOX)),
    # hostile inputs: every one a caller error, the same over both transports
    ("ScoreRoute", pb.ScoreRouteRequest()),
    ("ScoreRoute", line_request([(float("nan"), -100.2), (20.9, float("inf"))])),
    ("ScoreRoute", line_request([(95.0, -100.2), (20.9, -200.0)])),
    ("ScoreRoute", _geometry(encoded_polyline="\x00\x01}}}}~~~~ \u00e9")),
    ("ScoreRoute", _geometry(geojson=DEEP)),
    ("ScoreRoute", _geometry(geojson='{"type": "Point", "coordinates": [1, 2]}')),
    ("ScoreRoute", _score(average_speed_kmh=-5.0)),
    ("ScoreRoute", _score(average_speed_kmh=float("inf"))),
    ("ScoreRoute", _score(crossing_lane=99)),
    ("ScoreRoute", line_request(QUERETARO, departure_time=pb.ScoreRouteRequest().departure_time)),
    ("BatchScoreRoutes", pb.BatchScoreRoutesRequest(requests=[_score()] * 1001)),
    ("GetCellRisk", pb.GetCellRiskRequest(cell="not-a-cell")),
    ("GetCellRisk", pb.GetCellRiskRequest()),
    ("ListHotspots", pb.ListHotspotsRequest(bounds=pb.BoundingBox(west=10, south=10, east=-10, north=-10))),
    ("ListHotspots", pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, page_token="garbage!!")),
    ("ListHotspots", pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, page_size=-1)),
    ("ListBorderCrossings", pb.ListBorderCrossingsRequest(port_number="9999")),
    ("CompareRoutes", pb.CompareRoutesRequest(alternatives=[_score()])),
    ("CompareRoutes", pb.CompareRoutesRequest(alternatives=[_score(), pb.ScoreRouteRequest()], risk_weight=2.0)),
    ("SuggestDepartures", _departures(risk_weight=-1.0)),
    ("SuggestDepartures", pb.SuggestDeparturesRequest()),
    ("ExportAvoidAreas", pb.ExportAvoidAreasRequest(bounds=FAR_BOX, min_level=42)),
    ("ExportAvoidAreas", pb.ExportAvoidAreasRequest()),
]


def _connect_code(code: grpc.StatusCode) -> str:
    return "canceled" if code == grpc.StatusCode.CANCELLED else code.name.lower()


def _without_cached(message: Message) -> Message:
    """The answer less ``cached`` (whichever transport asked second is served from the shared cache)."""
    copy = type(message)()
    copy.CopyFrom(message)
    stack = [copy]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            if field.name == "cached":
                current.ClearField(field.name)
            elif field.message_type is not None:
                items = [value] if isinstance(value, Message) else [v for v in value if isinstance(v, Message)]
                stack.extend(item for item in items if isinstance(item, Message))
    return copy


@pytest.mark.parametrize(("method", "request_"), CASES, ids=[f"{i}-{m}" for i, (m, _) in enumerate(CASES)])
def test_the_same_request_gets_the_same_answer_over_grpc_and_connect(grpc_stub, connect, method, request_):
    try:
        expected = getattr(grpc_stub, method)(request_, timeout=60)
        grpc_error = None
    except grpc.RpcError as exc:
        grpc_error = exc
    answer = connect.call(method, request_)
    if grpc_error is None:
        assert answer.status == 200, answer.body
        got = answer.message(type(expected))
        assert _without_cached(got) == _without_cached(expected)
        return
    code = grpc_error.code()
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    assert answer.code == _connect_code(code), answer.body
    assert answer.status in (400, 404), answer.status
    expected_fields = [(v.field, v.description) for v in violations_of(grpc_error)] if answer.status == 400 else []
    assert [(v.field, v.description) for v in answer.violations()] == expected_fields


def test_every_rpc_of_the_service_is_covered_or_streamed():
    """A new RPC must join the parity cases (MonitorTrip is the stream; ReportTripPositions has its own test)."""
    names = {m.name for m in pb.DESCRIPTOR.services_by_name["RouteRiskService"].methods}
    assert names - {m for m, _ in CASES} == {"MonitorTrip", "ReportTripPositions"}


def test_the_json_is_the_canonical_proto3_mapping(connect):
    """lowerCamelCase names, enums by name, timestamps in RFC 3339, durations in seconds."""
    body = connect.call("ScoreRoute", _score()).body
    assert body["level"].startswith("RISK_LEVEL_")
    assert body["departureTime"].endswith("Z")
    assert body["duration"].endswith("s")
    parsed = json_format.ParseDict(body, pb.ScoreRouteResponse())
    assert json_format.MessageToDict(parsed) == body


def test_grpc_web_and_connect_binary_give_the_same_answer(grpc_stub, connect):
    """gRPC-Web (what browser gRPC clients send) and Connect with the binary codec, on the same port."""
    request = _score(reference="web")
    expected = _without_cached(grpc_stub.ScoreRoute(request, timeout=60))
    path = "/routerisk.v1.RouteRiskService/ScoreRoute"
    payload = request.SerializeToString()
    web = connect.client.post(
        path,
        content=b"\x00" + len(payload).to_bytes(4, "big") + payload,
        headers={"content-type": "application/grpc-web+proto"},
    )
    assert web.status_code == 200
    frame = web.content
    size = int.from_bytes(frame[1:5], "big")
    assert frame[0] == 0
    assert _without_cached(pb.ScoreRouteResponse.FromString(frame[5 : 5 + size])) == expected
    trailer = frame[5 + size :]
    assert trailer[0] == 0x80 and b"grpc-status: 0\r\n" in trailer
    binary = connect.client.post(path, content=payload, headers={"content-type": "application/proto"})
    assert binary.status_code == 200
    assert _without_cached(pb.ScoreRouteResponse.FromString(binary.content)) == expected


def test_a_grpc_web_error_carries_the_grpc_status(connect):
    payload = pb.ScoreRouteRequest().SerializeToString()
    web = connect.client.post(
        "/routerisk.v1.RouteRiskService/ScoreRoute",
        content=b"\x00" + len(payload).to_bytes(4, "big") + payload,
        headers={"content-type": "application/grpc-web+proto"},
    )
    assert web.status_code == 200
    assert web.content[0] == 0x80  # the trailer frame alone: the status and its BadRequest, as over gRPC
    trailer = web.content[5:].decode("latin-1")
    assert "grpc-status: 3\r\n" in trailer  # INVALID_ARGUMENT
    assert "grpc-status-details-bin: " in trailer
