"""Live border waits through a real server: the admin RPC, the feed poller, crossings in
scores, and CompareRoutes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.admin_convert import observation_to_proto
from service.grpc.server import load_data, start_server
from tests.conftest import free_port, routerisk_command, wait_serving
from tests.geodata.cbp_seeded import parse_feed
from tests.helpers.api import assert_invalid, line_request
from tests.helpers.border import BORDER, CBP, FEED, NOON_CDT, laredo_waits, via
from tests.helpers.servers import with_stubs


@pytest.fixture(scope="module")
def border_server_running():
    with with_stubs() as servers:
        yield servers


@pytest.fixture()
def border_server(border_server_running):
    """The module's server, back on the seed border data (no live waits), whatever a test before loaded."""
    running = border_server_running[0]
    running.state.activate(border=BORDER)
    return border_server_running


def load_feed(admin, path: Path = FEED) -> admin_pb.LoadBorderObservationsResponse:
    observations, _ = parse_feed(path.read_bytes())
    request = admin_pb.LoadBorderObservationsRequest(observations=[observation_to_proto(o) for o in observations])
    return admin.LoadBorderObservations(request, timeout=10)


def test_real_payload_gives_laredo_45_and_15_minutes_at_noon_cdt(border_server):
    _, stub, admin = border_server
    reply = load_feed(admin)
    assert reply.accepted > 20
    waits = laredo_waits(stub, datetime(2022, 6, 29, 17, 20, tzinfo=UTC))
    standard, fast = waits[pb.CROSSING_LANE_STANDARD], waits[pb.CROSSING_LANE_FAST]
    assert standard.expected_wait_minutes == 45 and fast.expected_wait_minutes == 15
    assert standard.source == fast.source == pb.WAIT_SOURCE_LIVE
    assert standard.observed_at.ToDatetime(tzinfo=UTC) == NOON_CDT
    assert standard.age.ToTimedelta().total_seconds() == 20 * 60
    # hours later the live reading is too old: the profile answers
    later = laredo_waits(stub, datetime(2022, 6, 29, 23, 0, tzinfo=UTC))
    assert later[pb.CROSSING_LANE_STANDARD].source == pb.WAIT_SOURCE_DEFAULT


def test_reloading_the_same_feed_changes_nothing(border_server):
    _, _stub, admin = border_server
    load_feed(admin)
    again = load_feed(admin)
    assert again.accepted == 0 and again.stale > 20


def test_a_bad_observation_rejects_the_batch_and_keeps_the_data(border_server):
    _, stub, admin = border_server
    before = load_feed(admin).border_data_version
    good = admin_pb.BorderObservation(port_number="230404", lane="standard", wait_minutes=5)
    good.observed_at.FromDatetime(datetime(2022, 6, 29, 18, 0, tzinfo=UTC))
    unknown_port = admin_pb.BorderObservation(port_number="999999", lane="standard", wait_minutes=5)
    unknown_port.observed_at.CopyFrom(good.observed_at)
    bad_lane = admin_pb.BorderObservation(port_number="230404", lane="express", wait_minutes=5)
    bad_lane.observed_at.CopyFrom(good.observed_at)
    request = admin_pb.LoadBorderObservationsRequest(observations=[good, unknown_port, bad_lane])
    assert_invalid(admin.LoadBorderObservations, request, "observations[1].port_number", "999999")
    assert_invalid(admin.LoadBorderObservations, request, "observations[2].lane", "express")
    waits = laredo_waits(stub, datetime(2022, 6, 29, 18, 0, tzinfo=UTC))
    assert waits[pb.CROSSING_LANE_STANDARD].expected_wait_minutes == 45  # the 5-minute reading was not applied
    assert stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version == before


def test_a_cross_border_route_uses_the_live_wait_and_reports_queue_exposure(border_server):
    _, stub, admin = border_server
    load_feed(admin)
    request = line_request(via("230404"))
    request.departure_time.FromDatetime(datetime(2022, 6, 29, 13, 20, tzinfo=UTC))  # arrives ~17:00 UTC
    response = stub.ScoreRoute(request, timeout=30)
    [crossing] = response.crossings
    assert crossing.port_number == "230404" and crossing.direction == pb.CROSSING_DIRECTION_NORTHBOUND
    assert crossing.wait_source == pb.WAIT_SOURCE_LIVE and crossing.expected_wait_minutes == 45
    assert crossing.observed_at.ToDatetime(tzinfo=UTC) == NOON_CDT
    assert abs((crossing.arrival_time.ToDatetime(tzinfo=UTC) - NOON_CDT).total_seconds()) < 3600
    assert response.queue_expected_incidents == pytest.approx(crossing.expected_incidents)
    assert response.queue_expected_incidents <= response.expected_incidents
    fast = line_request(via("230404"), crossing_lane=pb.CROSSING_LANE_FAST, departure_time=request.departure_time)
    assert stub.ScoreRoute(fast, timeout=30).crossings[0].expected_wait_minutes == 15


def test_compare_routes_ranks_and_explains(border_server):
    _, stub, admin = border_server
    load_feed(admin)
    departure = line_request(via("230404")).departure_time
    alternatives = [line_request(via(p), departure_time=departure, reference=p) for p in ("230404", "230403", "230502")]
    balanced = stub.CompareRoutes(pb.CompareRoutesRequest(alternatives=alternatives), timeout=60)
    assert sorted(r.index for r in balanced.ranked) == [0, 1, 2]
    assert [r.rank for r in balanced.ranked] == [1, 2, 3]
    # routes mostly outside the layer's coverage (most of this one in Texas) rank after the others
    covered = [r.result.level != pb.RISK_LEVEL_NOT_COVERED for r in balanced.ranked]
    assert covered == sorted(covered, reverse=True)
    costs = [r.cost for r in balanced.ranked]
    assert costs[: sum(covered)] == sorted(costs[: sum(covered)])
    assert balanced.recommended_index == balanced.ranked[0].index
    best = balanced.ranked[0].result
    assert best.reference == ("230404", "230403", "230502")[balanced.recommended_index]
    assert best.crossings[0].port_name in balanced.reason and balanced.reason
    by_time = stub.CompareRoutes(pb.CompareRoutesRequest(alternatives=alternatives, risk_weight=0.0), timeout=60)
    durations = [r.result.duration.ToTimedelta() for r in by_time.ranked]
    assert durations == sorted(durations)
    by_risk = stub.CompareRoutes(pb.CompareRoutesRequest(alternatives=alternatives, risk_weight=1.0), timeout=60)
    scores = [r.result.score for r in by_risk.ranked if r.result.level != pb.RISK_LEVEL_NOT_COVERED]
    assert scores == sorted(scores)
    assert [r.result.level == pb.RISK_LEVEL_NOT_COVERED for r in by_risk.ranked][len(scores) :] == [True] * (
        3 - len(scores)
    )


def test_compare_routes_errors(border_server):
    _, stub, _ = border_server
    one = pb.CompareRoutesRequest(alternatives=[line_request(via("230404"))])
    assert_invalid(stub.CompareRoutes, one, "alternatives", "1 alternatives")
    bad = pb.CompareRoutesRequest(
        alternatives=[line_request(via("230404")), line_request([(20.0, -100.0), (95.0, -100.0)])]
    )
    assert_invalid(stub.CompareRoutes, bad, "alternatives[1].route.line.points[1].latitude", "95")
    weight = pb.CompareRoutesRequest(alternatives=[line_request(via("230404"))] * 2, risk_weight=1.5)
    assert_invalid(stub.CompareRoutes, weight, "risk_weight")


def test_the_server_polls_a_feed_and_survives_a_broken_one(feed_url):
    url, handler = feed_url
    settings = Settings(address="127.0.0.1:0", border_feed_url=url, border_poll_seconds=0.2)
    running = start_server(settings)
    load_data(running, settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            at = datetime(2022, 6, 29, 17, 5, tzinfo=UTC)
            deadline = time.monotonic() + 10
            while laredo_waits(stub, at)[pb.CROSSING_LANE_STANDARD].source != pb.WAIT_SOURCE_LIVE:
                assert time.monotonic() < deadline, "the poller never loaded the feed"
                time.sleep(0.05)
            version = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=5).border_data_version
            handler.body = b'[{"port_number": "230404", "border": "Mexican Border"'  # truncated
            time.sleep(1.0)
            assert stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=5).border_data_version == version
            assert laredo_waits(stub, at)[pb.CROSSING_LANE_STANDARD].expected_wait_minutes == 45
    finally:
        running.stop(0)


def test_cli_border_load_poll_and_crossings_list(feed_url, tmp_path):
    url, _ = feed_url
    address = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=subprocess.DEVNULL)
    try:
        wait_serving(address)
        run = lambda *args: subprocess.run(  # noqa: E731
            [*routerisk_command(), *args, "--server", address],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
        bad = run("border", "load", str(CBP / "bwtnew-truncated.json"))
        assert bad.returncode == 2 and "nothing was loaded" in bad.stderr
        loaded = run("border", "load", str(FEED))
        assert loaded.returncode == 0, loaded.stderr
        assert "accepted" in loaded.stdout
        listed = run("crossings", "list", "--json", "--at", "2022-06-29T12:30:00-05:00", "--port", "230404")
        assert listed.returncode == 0, listed.stderr
        waits = json.loads(listed.stdout)["crossings"][0]["laneWaits"]
        assert [(w["lane"], w["expectedWaitMinutes"], w["source"]) for w in waits] == [
            ("CROSSING_LANE_STANDARD", 45.0, "WAIT_SOURCE_LIVE"),
            ("CROSSING_LANE_FAST", 15.0, "WAIT_SOURCE_LIVE"),
        ]
        table = run("crossings", "list", "--at", "2022-06-29T12:30:00-05:00")
        assert table.returncode == 0 and "World Trade Bridge" in table.stdout and "Otay Mesa" in table.stdout
        polled = run("border", "poll", "--url", url, "--once")
        assert polled.returncode == 0, polled.stderr
        assert "not newer" in polled.stderr  # the same feed again: nothing newer
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_historical_profiles_from_the_cli_are_served(tmp_path):
    out = tmp_path / "profiles.json"
    run = lambda *args: subprocess.run([*routerisk_command(), *args], capture_output=True, text=True, timeout=120)  # noqa: E731
    bad = run("border", "profiles", str(CBP / "historical-bad.csv"), "--port", "230404", "--out", str(out))
    assert bad.returncode == 2 and "nothing was written" in bad.stderr and not out.exists()
    made = run("border", "profiles", str(CBP / "historical-230404-week.csv"), "--port", "230404", "--out", str(out))
    assert made.returncode == 0, made.stderr
    settings = Settings(address="127.0.0.1:0", border_profiles_path=out)
    running = start_server(settings)
    load_data(running, settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            waits = laredo_waits(stub, datetime(2025, 1, 15, 18, 0, tzinfo=UTC))  # a Wednesday
            assert waits[pb.CROSSING_LANE_STANDARD].source == pb.WAIT_SOURCE_HISTORICAL
            document = json.loads(out.read_text())
            wednesday_noon = 2 * 24 + 12  # 18:00 UTC in January is 12:00 CST (-6)
            expected = document["ports"]["230404"]["standard"][wednesday_noon]
            assert waits[pb.CROSSING_LANE_STANDARD].expected_wait_minutes == pytest.approx(expected)
            request = pb.ListBorderCrossingsRequest(port_number="250602")
            other = stub.ListBorderCrossings(request, timeout=10).crossings[0].lane_waits[0]
            assert other.source == pb.WAIT_SOURCE_DEFAULT
    finally:
        running.stop(0)


def test_an_observation_stamped_in_the_future_is_refused_by_the_admin_rpc():
    """Attack: an admin observation stamped 59 min ahead was accepted and served with age -59 min."""
    settings = Settings(address="127.0.0.1:0")
    running = start_server(settings)
    load_data(running, settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub, admin = pb_grpc.RouteRiskServiceStub(channel), admin_grpc.RouteRiskAdminServiceStub(channel)
            before = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version
            now = int(time.time())
            good = admin_pb.BorderObservation(port_number="230404", lane="standard", wait_minutes=5)
            good.observed_at.FromSeconds(now - 60)
            future = admin_pb.BorderObservation(port_number="230404", lane="fast", wait_minutes=7)
            future.observed_at.FromSeconds(now + 59 * 60)
            request = admin_pb.LoadBorderObservationsRequest(observations=[good, future])
            assert_invalid(admin.LoadBorderObservations, request, "observations[1].observed_at", "ahead")
            after = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version
            assert after == before  # all or nothing: the good one was not applied either
            # within the clock-skew allowance (5 min by default): accepted
            future.observed_at.FromSeconds(now + 2 * 60)
            request = admin_pb.LoadBorderObservationsRequest(observations=[good, future])
            reply = admin.LoadBorderObservations(request, timeout=10)
            assert reply.accepted == 2
    finally:
        running.stop(0)


def test_the_feed_skips_and_counts_readings_stamped_in_the_future(feed_url, monkeypatch):
    from geodata.border import WaitObservation
    from service.store import border_feed

    url, _ = feed_url
    now = int(time.time())
    readings = [
        WaitObservation("230404", "standard", 30.0, now - 60),
        WaitObservation("230404", "fast", 10.0, now + 59 * 60),
        WaitObservation("230401", "standard", 20.0, now + 60),  # within the allowance
    ]
    monkeypatch.setattr(border_feed, "read_observations", lambda body: list(readings))
    sunk: list[WaitObservation] = []
    skipped = border_feed.FEED_SKIPPED.labels("future")
    before = skipped._value.get()
    poller = border_feed.FeedPoller(url, 60, lambda obs, _src: sunk.extend(obs), max_clock_skew_s=300)
    assert poller.poll_once() == 2
    assert [o.lane for o in sunk] == ["standard", "standard"]
    assert skipped._value.get() - before == 1
