"""MonitorTrip for HTTP/1.1 clients: ReportTripPositions gives, batch by batch, the alerts a
MonitorTrip stream gives, on the same trips (a trip may move from one to the other)."""

from __future__ import annotations

import pytest

from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.monitor import alerts_of, requests
from tests.helpers.trip_track import Track, build_track

REPORT = "ReportTripPositions"


@pytest.fixture(scope="module")
def track() -> Track:
    return build_track()


def _report(connect, trip_id: str, track: Track, start: int, stop: int | None) -> pb.ReportTripPositionsResponse:
    batch = pb.ReportTripPositionsRequest(positions=list(requests(trip_id, track, start, stop)))
    answer = connect.call(REPORT, batch)
    return answer.message(pb.ReportTripPositionsResponse)


def _kinds(alerts) -> list[tuple[int, str]]:
    return [(a.kind, a.cell) for a in alerts]


def test_batches_raise_the_alerts_a_stream_raises(grpc_stub, connect, track):
    streamed = list(grpc_stub.MonitorTrip(requests("streamed", track), timeout=120))
    size = 50
    reported: list[pb.MonitorTripResponse] = []
    for start in range(0, len(track.positions), size):
        batch = _report(connect, "batched", track, start, start + size)
        assert not batch.HasField("error")
        reported.extend(batch.responses)
    assert len(reported) == len(streamed) == len(track.positions)
    assert _kinds(alerts_of(reported)) == _kinds(alerts_of(streamed))
    assert {pb.TRIP_ALERT_KIND_STOPPED_IN_HIGH_RISK_CELL, pb.TRIP_ALERT_KIND_LEFT_PLANNED_ROUTE} <= {
        a.kind for a in alerts_of(reported)
    }
    assert reported[-1].positions_processed == len(track.positions)


def test_a_trip_started_on_a_stream_continues_in_batches(grpc_stub, connect, track):
    half = len(track.positions) // 2
    streamed = list(grpc_stub.MonitorTrip(requests("moved", track, 0, half), timeout=120))
    rest = _report(connect, "moved", track, half, None)
    assert rest.responses[0].resumed
    assert rest.responses[-1].positions_processed == len(track.positions)
    whole = list(grpc_stub.MonitorTrip(requests("whole", track), timeout=120))
    assert _kinds(alerts_of([*streamed, *rest.responses])) == _kinds(alerts_of(whole))


def test_a_resent_batch_is_acknowledged_as_duplicates_without_alerts_again(connect, track):
    first = _report(connect, "resent", track, 0, 40)
    again = _report(connect, "resent", track, 0, 40)
    assert all(r.duplicate for r in again.responses)
    assert alerts_of(again.responses) == []
    assert len(first.responses) == 40


def test_one_bad_position_refuses_the_batch_with_nothing_processed(connect, track):
    positions = list(requests("refused", track, 0, 10))
    positions[3].location.latitude = 123.0
    positions[7].trip_id = "another"
    answer = connect.call(REPORT, pb.ReportTripPositionsRequest(positions=positions))
    assert (answer.status, answer.code) == (400, "invalid_argument")
    fields = {v.field for v in answer.violations()}
    assert fields == {"positions[3].location.latitude", "positions[7].trip_id"}
    retry = _report(connect, "refused", track, 0, 10)
    assert not any(r.duplicate for r in retry.responses)  # nothing of the refused batch was recorded


def test_an_empty_or_oversized_batch_is_invalid_argument(connect, track):
    empty = connect.call(REPORT, pb.ReportTripPositionsRequest())
    assert (empty.status, empty.code) == (400, "invalid_argument")
    one = next(requests("big", track, 0, 1))
    big = connect.call(REPORT, pb.ReportTripPositionsRequest(positions=[one] * 1001))
    assert [v.field for v in big.violations()] == ["positions"]


def test_the_stream_itself_says_to_use_the_batches(connect):
    answer = connect.post(
        "/routerisk.v1.RouteRiskService/MonitorTrip", b"", {"content-type": "application/connect+json"}
    )
    assert answer.status == 200  # a Connect stream reports its error in its end message
    assert '"code": "unimplemented"' in answer.body
    assert "ReportTripPositions" in answer.body
