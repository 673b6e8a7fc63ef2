"""Requests to the RouteRisk API and checks of its errors."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import seeds
from geodata.route import from_file
from routerisk.v1 import route_risk_service_pb2 as pb

DEPARTURE = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)  # Tuesday 22:00 in Mexico City
QUERETARO = [(20.40, -100.20), (20.90, -100.20)]
MEXICO_CITY_BOX = pb.BoundingBox(west=-99.6, south=19.0, east=-98.6, north=20.0)


def line_request(points: list[tuple[float, float]], **fields) -> pb.ScoreRouteRequest:
    request = pb.ScoreRouteRequest(**fields)
    request.route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in points)
    if "departure_time" not in fields:
        request.departure_time.FromDatetime(DEPARTURE)
    return request


def demo_request(name: str, **fields) -> pb.ScoreRouteRequest:
    path = from_file(seeds.DEMO_ROUTES[name])
    return line_request(list(zip(path.lat.tolist(), path.lng.tolist(), strict=True)), **fields)


def violations_of(error: grpc.RpcError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    status = rpc_status.from_call(error)
    assert status is not None, "INVALID_ARGUMENT must carry a google.rpc.Status"
    found = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend(bad.field_violations)
    return found


def assert_invalid(call, request, field: str, *in_description: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = violations_of(caught.value)
    matching = [v for v in violations if v.field == field]
    assert matching, f"no violation for {field}: {[v.field for v in violations]}"
    for text in in_description:
        assert any(text in v.description for v in matching), (text, [v.description for v in matching])
