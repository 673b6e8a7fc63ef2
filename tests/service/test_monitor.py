"""MonitorTrip through a real gRPC channel: a replayed track, resume by trip id, bad input, limits."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.usecases.trip_monitor import TripStore, distance_to_route_km
from tests.helpers.monitor import _drop_after, alerts_of, request, requests
from tests.helpers.servers import serving
from tests.helpers.trip_track import Track, build_track

KIND = pb.TripAlertKind


@pytest.fixture(scope="module")
def track() -> Track:
    return build_track()


def first_index(alerts: list[pb.TripAlert], kind: int) -> int:
    return next(i for i, a in enumerate(alerts) if a.kind == kind)


def test_replayed_track_raises_the_expected_alerts_in_order(stub, track):
    responses = list(stub.MonitorTrip(requests(f"e2e-{uuid.uuid4().hex}", track), timeout=60))
    assert len(responses) == len(track.positions)  # one acknowledgement per position
    assert [r.positions_processed for r in responses] == list(range(1, len(track.positions) + 1))
    assert not any(r.duplicate for r in responses)
    assert responses[-1].acknowledged_time.ToNanoseconds() == round(track.positions[-1].time_s * 1e9)
    assert responses[0].layer_synthetic
    alerts = alerts_of(responses)
    order = [
        first_index(alerts, k)
        for k in (
            KIND.TRIP_ALERT_KIND_ENTERED_HIGH_RISK_CELL,
            KIND.TRIP_ALERT_KIND_STOPPED_IN_HIGH_RISK_CELL,
            KIND.TRIP_ALERT_KIND_LEFT_PLANNED_ROUTE,
            KIND.TRIP_ALERT_KIND_RETURNED_TO_ROUTE,
            KIND.TRIP_ALERT_KIND_APPROACHING_CROSSING,
        )
    ]
    assert order == sorted(order)
    stopped = [a for a in alerts if a.kind == KIND.TRIP_ALERT_KIND_STOPPED_IN_HIGH_RISK_CELL]
    assert len(stopped) == 1  # one alert for the whole 40-minute stop
    stop = stopped[0]
    stop_start = track.positions[track.stop_index]
    assert stop.dwell.ToTimedelta().total_seconds() == pytest.approx(15 * 60)  # the default threshold
    assert stop.time.ToNanoseconds() / 1e9 == pytest.approx(stop_start.time_s + 15 * 60)
    assert stop.severity >= pb.RISK_LEVEL_SEVERE and "stopped 15 min" in stop.reason
    assert stop.cell and stop.risk > 0
    left = [a for a in alerts if a.kind == KIND.TRIP_ALERT_KIND_LEFT_PLANNED_ROUTE]
    assert len(left) == 1 and left[0].distance_meters > 3000
    assert left[0].time.ToNanoseconds() / 1e9 == pytest.approx(track.positions[track.detour_index].time_s)
    assert left[0].severity >= pb.RISK_LEVEL_MODERATE
    approach = [a for a in alerts if a.kind == KIND.TRIP_ALERT_KIND_APPROACHING_CROSSING]
    assert len(approach) == 1
    assert approach[0].port_number == "230404" and approach[0].crossing_name == "World Trade Bridge"
    assert approach[0].distance_meters <= 15_000 and approach[0].expected_wait_minutes > 0
    assert approach[0].wait_source == pb.WAIT_SOURCE_DEFAULT
    # the same wait ListBorderCrossings reports for that port and time
    listed = pb.ListBorderCrossingsRequest(port_number="230404")
    listed.time.CopyFrom(approach[0].time)
    lane = stub.ListBorderCrossings(listed).crossings[0].lane_waits[0]
    assert approach[0].expected_wait_minutes == pytest.approx(lane.expected_wait_minutes)
    assert all(a.reason and a.severity != pb.RISK_LEVEL_UNSPECIFIED for a in alerts)
    # no repeated alert while its condition persists: consecutive positions never alert twice for one kind
    entered = [a for a in alerts if a.kind == KIND.TRIP_ALERT_KIND_ENTERED_HIGH_RISK_CELL]
    assert entered and len(entered) < len(track.positions) / 10


def test_a_dropped_stream_resumes_by_trip_id_without_repeated_alerts(stub, track):
    reference = alerts_of(stub.MonitorTrip(requests(f"ref-{uuid.uuid4().hex}", track), timeout=60))
    trip = f"resume-{uuid.uuid4().hex}"
    cut = track.stop_index + 5  # mid-stop: the stop alert is still to come, in the second stream
    before = _drop_after(trip, track, cut, stub)
    assert len(before) == cut
    acked = before[-1].acknowledged_time.ToNanoseconds() / 1e9
    # the tracker resends from a little before the cut: the overlap is acknowledged as duplicates
    overlap = 3
    after = list(stub.MonitorTrip(requests(trip, track, cut - overlap), timeout=60))
    assert after[0].resumed and not any(r.resumed for r in after[1:])
    assert [r.duplicate for r in after[:overlap]] == [True] * overlap and not after[overlap].duplicate
    assert all(r.acknowledged_time.ToNanoseconds() / 1e9 == acked for r in after[:overlap])
    assert after[-1].positions_processed == len(track.positions)
    combined = alerts_of(before) + alerts_of(after)
    assert [(a.kind, a.time.seconds) for a in combined] == [(a.kind, a.time.seconds) for a in reference]


def test_trip_ids_are_separate(stub, track):
    """A new trip id starts afresh: its first high-risk cell alerts again."""
    first = alerts_of(stub.MonitorTrip(requests(f"a-{uuid.uuid4().hex}", track, 0, 20), timeout=30))
    second = alerts_of(stub.MonitorTrip(requests(f"b-{uuid.uuid4().hex}", track, 0, 20), timeout=30))
    assert first and [a.kind for a in first] == [a.kind for a in second]


def test_bad_position_ends_the_stream_with_the_field_named(stub, track):
    def feed() -> Iterator[pb.MonitorTripRequest]:
        yield from requests(f"bad-{uuid.uuid4().hex}", track, 0, 3)
        bad = request("", track.positions[3])
        bad.location.latitude = 123.4
        bad.ClearField("time")
        yield bad
        yield request("", track.positions[4])

    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for response in stub.MonitorTrip(feed(), timeout=30):
            received.append(response)
    assert len(received) == 3  # the good positions before it were processed and acknowledged
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    bad = error_details_pb2.BadRequest()
    assert status is not None and status.details[0].Unpack(bad)
    fields = {v.field: v.description for v in bad.field_violations}
    assert set(fields) == {"positions[3].time", "positions[3].location.latitude"}
    assert "123.4" in fields["positions[3].location.latitude"]


def test_bad_planned_route_and_options_are_named(stub, track):
    message = request("", track.positions[0])
    message.planned_route.line.points.add(latitude=19.0, longitude=-99.0)
    message.options.off_route_meters = 5
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.MonitorTrip(iter([message]), timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    rpc_status.from_call(caught.value).details[0].Unpack(bad)
    assert any(v.field.startswith("positions[0].planned_route.line.points") for v in bad.field_violations)


def test_a_changed_trip_id_within_a_stream_is_refused(stub, track):
    messages = [request("one", track.positions[0]), request("two", track.positions[1])]
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.MonitorTrip(iter(messages), timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "positions[1].trip_id" in caught.value.details()


def test_streams_have_their_own_cap_and_a_closed_stream_frees_its_slot(track):
    running = serving(max_trip_streams=1, max_concurrent_rpcs=1)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            hold = threading.Event()

            def held() -> Iterator[pb.MonitorTripRequest]:
                yield request("", track.positions[0])
                hold.wait(30)

            open_call = stub.MonitorTrip(held(), timeout=60)
            assert next(open_call).positions_processed == 1
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.MonitorTrip(requests("", track, 0, 2), timeout=10))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # the open stream holds no unary slot: scoring still works with max_concurrent_rpcs=1
            cell = pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.6, longitude=-99.2))
            assert stub.GetCellRisk(cell, timeout=10).cell
            open_call.cancel()
            hold.set()
            deadline = time.monotonic() + 10
            while True:  # the slot is released as the cancelled handler unwinds
                try:
                    assert len(list(stub.MonitorTrip(requests("", track, 0, 2), timeout=10))) == 2
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                    time.sleep(0.05)
    finally:
        running.stop(0)


def test_trip_store_is_bounded_and_forgets_idle_trips():
    now = [0.0]
    store = TripStore(max_trips=2, ttl_s=100, clock=lambda: now[0])
    assert store.get("a")[1] is False and store.get("a")[1] is True
    store.get("b")
    store.get("c")  # over the bound: the least recently used ("a") goes
    assert len(store) == 2 and store.get("b")[1] is True
    now[0] = 1000.0
    assert store.get("b")[1] is False  # idle past the TTL: forgotten


def test_distance_to_route_is_in_metres_not_degrees(track):
    route = track.route
    lat, lng = float(route.lat[40]), float(route.lng[40])
    assert distance_to_route_km(route, lat, lng) < 0.01
    # 0.05 degrees of latitude is 5.56 km; the distance to the route can only be less
    assert 0.5 < distance_to_route_km(route, lat + 0.05, lng) <= 5.6


def test_streams_need_a_scoring_key_when_auth_is_on_and_resume_under_it(track):
    from tests.helpers.auth import KEYS, READER, SCORER, bearer

    running = serving(api_keys=KEYS)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.MonitorTrip(requests("t", track, 0, 2), timeout=10))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as caught:
                list(stub.MonitorTrip(requests("t", track, 0, 2), timeout=10, metadata=bearer(READER)))
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # MonitorTrip needs "score"
            first = list(stub.MonitorTrip(requests("t", track, 0, 2), timeout=10, metadata=bearer(SCORER)))
            assert [r.positions_processed for r in first] == [1, 2]
            again = list(stub.MonitorTrip(requests("t", track, 0, 3), timeout=10, metadata=bearer(SCORER)))
            assert again[0].resumed and [r.duplicate for r in again] == [True, True, False]
    finally:
        running.stop(0)


def test_one_log_line_per_stream_without_positions(stub, track, caplog):
    trip = f"log-{uuid.uuid4().hex}"
    with caplog.at_level("INFO", logger="service.grpc.request_log"):
        list(stub.MonitorTrip(requests(trip, track, 0, 5), timeout=30))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _monitor_lines(caplog):
            time.sleep(0.02)  # the line is written as the handler unwinds, after the client saw the end
    (line,) = _monitor_lines(caplog)
    assert line.code == "OK" and line.messages == 5 and line.request_id
    assert trip not in caplog.text and f"{track.positions[0].lat:.4f}" not in caplog.text


def _monitor_lines(caplog) -> list:
    return [r for r in caplog.records if r.getMessage() == "rpc" and getattr(r, "method", "") == "MonitorTrip"]


def test_one_tenant_at_its_stream_cap_cannot_take_the_other_tenants_streams(track):
    """Attack: one tenant opens more MonitorTrip streams than the server has; the others must still get theirs."""
    from service.grpc.auth import hash_key
    from tests.helpers.auth import bearer

    keys = json.dumps(
        [
            {"sha256": hash_key("key-of-hog"), "tenant": "hog", "permissions": ["score"]},
            {"sha256": hash_key("key-of-other"), "tenant": "other", "permissions": ["score"]},
        ]
    )
    running = serving(api_keys=keys, max_trip_streams=6)  # per tenant: half of it by default
    hold = threading.Event()
    calls = []

    def held(trip: str) -> Iterator[pb.MonitorTripRequest]:
        yield request(trip, track.positions[0])
        hold.wait(30)

    def open_stream(key: str, trip: str) -> grpc.StatusCode:
        call = stub.MonitorTrip(held(trip), timeout=60, metadata=bearer(key))
        calls.append(call)
        try:
            assert next(call).positions_processed == 1
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            hog = [open_stream("key-of-hog", f"hog-{i}") for i in range(5)]
            assert hog == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
            other = [open_stream("key-of-other", f"other-{i}") for i in range(3)]
            assert other == [grpc.StatusCode.OK] * 3
            # a refused stream holds nothing: when one of the hog's streams closes, it gets one back
            calls[0].cancel()
            deadline = time.monotonic() + 10
            while (code := open_stream("key-of-hog", "hog-again")) != grpc.StatusCode.OK:
                assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        hold.set()
        for call in calls:
            call.cancel()
        running.stop(0)
