"""One log line and the metrics per HTTP call, like the gRPC server's: labelled by transport,
with the request id echoed, and nothing of the request in the log."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY

from tests.helpers.api import QUERETARO, line_request


def _count(method: str, code: str, transport: str) -> float:
    labels = {"method": method, "code": code, "transport": transport}
    return REGISTRY.get_sample_value("routerisk_http_rpcs_total", labels) or 0.0


def test_calls_are_counted_by_method_code_and_transport(connect):
    before_ok, before_bad = _count("ScoreRoute", "OK", "connect"), _count("ScoreRoute", "INVALID_ARGUMENT", "connect")
    assert connect.call("ScoreRoute", line_request(QUERETARO)).status == 200
    assert connect.call("ScoreRoute", {}).status == 400
    assert _count("ScoreRoute", "OK", "connect") == before_ok + 1
    assert _count("ScoreRoute", "INVALID_ARGUMENT", "connect") == before_bad + 1


def test_one_rpc_line_per_call_with_the_callers_request_id(connect, caplog):
    caplog.set_level(logging.INFO, logger="service.http.calls")
    answer = connect.call("ScoreRoute", line_request(QUERETARO), {"x-request-id": "dispatch-42"})
    assert answer.headers["x-request-id"] == "dispatch-42"
    lines = [r for r in caplog.records if r.name == "service.http.calls" and r.getMessage() == "rpc"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.code, line.transport, line.request_id) == ("ScoreRoute", "OK", "connect", "dispatch-42")
    assert line.service == "routerisk.v1.RouteRiskService"
    assert "100.2" not in str(line.__dict__) and "20.4" not in str(line.__dict__)


def test_a_request_id_that_is_not_a_plain_token_is_replaced(connect):
    answer = connect.call("ListBorderCrossings", {}, {"x-request-id": "evil\tid with spaces"})
    assert answer.headers["x-request-id"] != "evil\tid with spaces"
    assert len(answer.headers["x-request-id"]) == 32
