"""The reliability suite's hostile ScoreRoute requests (tests/test_fuzz_api.py), sent over gRPC and
over Connect, binary and JSON: the same answer or the same error, code and field violations alike,
and never ``internal`` or ``unknown``."""

from __future__ import annotations

import grpc
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import violations_of
from tests.http.conftest import Answer
from tests.http.test_parity import _connect_code, _without_cached
from tests.test_fuzz_api import score_requests

EXAMPLES = settings(max_examples=60, deadline=None)
PATH = "/routerisk.v1.RouteRiskService/"


def _over_grpc(stub, method: str, request) -> tuple[str, object]:
    try:
        return "ok", getattr(stub, method)(request, timeout=60)
    except grpc.RpcError as exc:
        assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), exc
        return _connect_code(exc.code()), [(v.field, v.description) for v in violations_of(exc)]


def _same(answer: Answer, expected: tuple[str, object], kind: type) -> None:
    code, detail = expected
    assert answer.code not in ("internal", "unknown"), answer.body
    assert answer.code == code, (answer.status, answer.body)
    if code == "ok":
        got = answer.message(kind) if isinstance(answer.body, dict) else kind.FromString(answer.body)
        assert _without_cached(got) == _without_cached(detail)
    else:
        assert [(v.field, v.description) for v in answer.violations()] == detail


def _binary(connect, method: str, request) -> Answer:
    response = connect.client.post(
        PATH + method, content=request.SerializeToString(), headers={"content-type": "application/proto"}
    )
    if response.status_code == 200:  # the answer in binary: compared as it is
        assert response.headers["content-type"] == "application/proto"
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
    _same(_binary(connect, "ScoreRoute", request), expected, pb.ScoreRouteResponse)
    answer = _json(connect, "ScoreRoute", request)
    if answer is not None:
        _same(answer, expected, pb.ScoreRouteResponse)


@settings(max_examples=20, deadline=None)
@given(items=st.lists(score_requests(), min_size=1, max_size=4))
def test_hostile_batches_get_the_same_answer_over_both(grpc_stub, connect, items):
    request = pb.BatchScoreRoutesRequest(requests=items)
    expected = _over_grpc(grpc_stub, "BatchScoreRoutes", request)
    answer = _json(connect, "BatchScoreRoutes", request)
    if answer is not None:
        _same(answer, expected, pb.BatchScoreRoutesResponse)
