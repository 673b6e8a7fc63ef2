"""The reliability suite's hostile ScoreRoute requests (tests/test_fuzz_api.py), sent over gRPC and
over Connect, binary and JSON: the same answer or the same error, code and field violations alike,
and never ``internal`` or ``unknown``."""

from __future__ import annotations

import re

import grpc
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import violations_of
from tests.http.conftest import Answer
from tests.http.test_parity import _connect_code, _without_cached
from tests.test_fuzz_api import field_exists, score_requests, trip_positions

EXAMPLES = settings(max_examples=60, deadline=None)
PATH = "/routerisk.v1.RouteRiskService/"


def _over_grpc(stub, method: str, request) -> tuple[str, object]:
    try:
        return "ok", getattr(stub, method)(request, timeout=60)
    except grpc.RpcError as exc:
        assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), exc
        return _connect_code(exc.code()), [(v.field, v.description) for v in violations_of(exc)]


def _same(answer: Answer, expected: tuple[str, object], kind: type, timeless: bool = True) -> None:
    """The same code and violations; the same answer too when it does not depend on when it was asked
    (``timeless``: a request without a departure leaves on the server's clock, a second apart here)."""
    code, detail = expected
    assert answer.code not in ("internal", "unknown"), answer.body
    assert answer.code == code, (answer.status, answer.body)
    if code != "ok":
        assert [(v.field, v.description) for v in answer.violations()] == detail
        return
    got = answer.message(kind) if isinstance(answer.body, dict) else kind.FromString(answer.body)
    if timeless:
        assert _without_cached(got) == _without_cached(detail)
    else:
        assert got.ByteSize() > 0  # an answer, its times from the server's clock


def _binary(connect, method: str, request) -> Answer:
    response = connect.client.post(
        PATH + method, content=request.SerializeToString(), headers={"content-type": "application/proto"}
    )
    if response.status_code == 200:  # the answer in binary: compared as it is
        assert response.headers["content-type"] == "application/proto", response.headers
        return Answer(200, response.content, response.headers)
    return Answer(response.status_code, response.json(), response.headers)


def _json(connect, method: str, request) -> Answer | None:
    """None when the request has no proto3 JSON form (a timestamp outside years 1-9999, say)."""
    try:
        text = json_format.MessageToJson(request)
    except json_format.Error:
        return None
    return connect.post(PATH + method, text)


@EXAMPLES
@given(request=score_requests())
def test_hostile_score_requests_get_the_same_answer_over_both(grpc_stub, connect, request):
    expected = _over_grpc(grpc_stub, "ScoreRoute", request)
    timeless = request.HasField("departure_time")
    _same(_binary(connect, "ScoreRoute", request), expected, pb.ScoreRouteResponse, timeless)
    answer = _json(connect, "ScoreRoute", request)
    if answer is not None:
        _same(answer, expected, pb.ScoreRouteResponse, timeless)


@settings(max_examples=20, deadline=None)
@given(items=st.lists(score_requests(), min_size=1, max_size=4))
def test_hostile_batches_get_the_same_answer_over_both(grpc_stub, connect, items):
    request = pb.BatchScoreRoutesRequest(requests=items)
    expected = _over_grpc(grpc_stub, "BatchScoreRoutes", request)
    answer = _json(connect, "BatchScoreRoutes", request)
    if answer is not None:
        _same(answer, expected, pb.BatchScoreRoutesResponse, all(r.HasField("departure_time") for r in items))


@settings(max_examples=40, deadline=None)
@given(items=trip_positions())
def test_hostile_position_batches_get_the_same_answer_over_both(grpc_stub, connect, items):
    """ReportTripPositions with the reliability suite's hostile positions, on trips that live for
    the call only (no trip id), so the two transports start alike: the same acknowledgements and
    alerts, or the same refusal naming ``positions[i].<field>`` of a position that was sent."""
    for item in items:
        item.trip_id = ""
    request = pb.ReportTripPositionsRequest(positions=items)
    expected = _over_grpc(grpc_stub, "ReportTripPositions", request)
    _same(_binary(connect, "ReportTripPositions", request), expected, pb.ReportTripPositionsResponse)
    if expected[0] != "ok":
        assert expected[0] == "invalid_argument"
        for field, _ in expected[1]:  # type: ignore[union-attr]
            match = re.fullmatch(r"positions(?:\[(\d+)\]\.(.+))?", field)
            assert match, field
            if match.group(1) is not None:
                index = int(match.group(1))
                assert index < len(items) and field_exists(items[index], match.group(2)), field
