"""Border feed faults under load: the feed the server polls hangs, times out, answers 500,
garbage or an empty list while clients keep scoring a route across Laredo. Every call is
answered, with the same answer as before the fault, and the live waits loaded before stay.
(A truncated feed is in test_border_api.py; Redis faults in test_redis_faults.py.)"""

from __future__ import annotations

import http.server
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest

from geodata.cbp_feed import InvalidFeedError
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import load_data, start_server
from service.store.border_feed import FeedPoller
from tests.service.test_api import line_request
from tests.service.test_border_api import FEED, laredo_waits, via
from tools.reliability.figures import record

AT = datetime(2022, 6, 29, 17, 5, tzinfo=UTC)
FIGURES: dict[str, dict] = {}


class Feed(http.server.BaseHTTPRequestHandler):
    """A CBP feed whose behaviour the test switches: good, hang, error, garbage, empty."""

    mode = "good"
    release = threading.Event()
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        mode = type(self).mode
        if mode == "hang":
            type(self).release.wait(10)
            mode = "good"
        if mode == "error":
            self.send_error(500, "feed backend down")
            return
        body = {
            "good": FEED.read_bytes(),
            "garbage": bytes(random.Random(type(self).requests).randrange(256) for _ in range(2_000)),
            "empty": b"[]",
        }[mode]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        return None


@pytest.fixture()
def feed() -> Iterator[tuple[str, type[Feed]]]:
    handler = type("FeedUnderTest", (Feed,), {"mode": "good", "release": threading.Event(), "requests": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/bwtnew", handler
    handler.release.set()
    httpd.shutdown()


def crossing_request() -> pb.ScoreRouteRequest:
    request = line_request(via("230404"))
    request.departure_time.FromDatetime(datetime(2022, 6, 29, 13, 20, tzinfo=UTC))  # arrives ~17:00 UTC
    return request


def essentials(response: pb.ScoreRouteResponse) -> bytes:
    response.cached = False
    return response.SerializeToString(deterministic=True)


def test_feed_faults_under_load_keep_every_answer_and_the_loaded_waits(feed):
    url, handler = feed
    settings = Settings(address="127.0.0.1:0", border_feed_url=url, border_poll_seconds=0.1, cache_max_entries=0)
    running = start_server(settings)
    load_data(running, settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            deadline = time.monotonic() + 10
            while laredo_waits(stub, AT)[pb.CROSSING_LANE_STANDARD].source != pb.WAIT_SOURCE_LIVE:
                assert time.monotonic() < deadline, "the poller never loaded the feed"
                time.sleep(0.05)
            version = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=5).border_data_version
            reference = essentials(stub.ScoreRoute(crossing_request(), timeout=30))
            assert pb.ScoreRouteResponse.FromString(reference).crossings[0].wait_source == pb.WAIT_SOURCE_LIVE

            for mode in ("hang", "error", "garbage", "empty"):
                polls_before = handler.requests
                calls, wrong, errors = 0, 0, []
                handler.mode = mode
                stop_at = time.monotonic() + 1.0
                while time.monotonic() < stop_at:
                    try:
                        got = essentials(stub.ScoreRoute(crossing_request(), timeout=10))
                    except grpc.RpcError as exc:
                        errors.append(exc.code().name)
                        continue
                    calls += 1
                    wrong += got != reference
                    waits = laredo_waits(stub, AT)
                    assert waits[pb.CROSSING_LANE_STANDARD].expected_wait_minutes == 45
                    assert waits[pb.CROSSING_LANE_STANDARD].source == pb.WAIT_SOURCE_LIVE
                border = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=5).border_data_version
                polled = handler.requests - polls_before
                if mode == "hang":
                    handler.release.set()
                handler.mode = "good"
                FIGURES[mode] = {"calls": calls, "wrong": wrong, "errors": len(errors), "polls": polled}
                assert errors == [] and wrong == 0, (mode, errors, wrong)
                assert calls >= 10, (mode, calls)
                assert border == version, f"{mode}: the border data changed"
                assert polled >= 1, f"{mode}: the feed was not polled during the fault"
    finally:
        handler.release.set()
        running.stop(0)
    record("feed-faults", "ci", **FIGURES)


def test_a_feed_that_times_out_changes_nothing(feed):
    """The poller's fetch times out (the server's own poller has the same code, timeout 10 s)."""
    url, handler = feed
    settings = Settings(address="127.0.0.1:0")
    running = start_server(settings)
    load_data(running, settings)
    try:
        state = running.state
        before = state.snapshot
        handler.mode = "hang"
        poller = FeedPoller(url, 60, lambda obs, _src: state.merge_observations(obs, int(time.time())), timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            poller.poll_once()
        assert time.monotonic() - started < 2.0
        assert state.snapshot is before
        handler.mode = "garbage"
        with pytest.raises(InvalidFeedError):
            poller.poll_once()
        assert state.snapshot is before
        handler.mode = "empty"
        assert poller.poll_once() == 0
        assert state.snapshot is before  # an empty feed is no news: the waits loaded before stay
    finally:
        handler.release.set()
        running.stop(0)
