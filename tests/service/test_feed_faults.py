"""Border feed faults under load: the feed the server polls hangs, times out, answers 500,
garbage or an empty list while clients keep scoring a route across Laredo. Every call is
answered, with the same answer as before the fault, and the live waits loaded before stay.
(A truncated feed is in test_border_api.py; Redis faults in test_redis_faults.py.)"""

from __future__ import annotations

import http.server
import random
import signal
import subprocess
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
from service.store.border_feed import FeedPoller, FeedStalledError
from tests.conftest import free_port, routerisk_command, wait_serving
from tests.helpers.api import line_request
from tests.helpers.border import FEED, laredo_waits, via
from tests.helpers.servers import clean_env
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


class Trickle(http.server.BaseHTTPRequestHandler):
    """Attack: a feed that answers 200 and then sends its body one byte at a time, slowly."""

    gap_s = 0.3
    max_bytes = 40  # then it closes: without a total timeout the poller reads it all, and it is garbage
    started = threading.Event()

    def do_GET(self) -> None:
        type(self).started.set()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            for byte in FEED.read_bytes()[: type(self).max_bytes]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(type(self).gap_s)
        except OSError:
            pass  # the poller gave up on us

    def log_message(self, *args) -> None:
        return None


@pytest.fixture()
def trickle() -> Iterator[tuple[str, type[Trickle]]]:
    handler = type("TrickleUnderTest", (Trickle,), {"started": threading.Event()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/bwtnew", handler
    httpd.shutdown()


def test_a_trickling_feed_is_abandoned_at_the_total_timeout_and_the_old_waits_stay(trickle):
    """Each byte comes well within the read timeout, so only the total timeout can end the fetch."""
    url, _ = trickle
    settings = Settings(address="127.0.0.1:0")
    running = start_server(settings)
    load_data(running, settings)
    try:
        state = running.state
        before = state.snapshot
        poller = FeedPoller(url, 60, lambda obs, _src: state.merge_observations(obs, int(time.time())), timeout_s=1.0)
        with pytest.raises(FeedStalledError):
            poller.poll_once()
        assert state.snapshot is before
    finally:
        running.stop(0)


def test_the_server_logs_a_stalled_feed_once_and_keeps_serving_the_waits_loaded_before(feed, caplog):
    url, handler = feed
    settings = Settings(
        address="127.0.0.1:0", border_feed_url=url, border_poll_seconds=0.1, border_feed_timeout_seconds=0.5
    )
    running = start_server(settings)
    with caplog.at_level("INFO", logger="service.store.border_feed"):
        load_data(running, settings)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = pb_grpc.RouteRiskServiceStub(channel)
                deadline = time.monotonic() + 10
                while laredo_waits(stub, AT)[pb.CROSSING_LANE_STANDARD].source != pb.WAIT_SOURCE_LIVE:
                    assert time.monotonic() < deadline, "the poller never loaded the feed"
                    time.sleep(0.05)
                handler.mode = "hang"
                polls = handler.requests
                deadline = time.monotonic() + 15
                while handler.requests < polls + 3:  # three stalled polls in a row
                    assert time.monotonic() < deadline, "the poller stopped polling a stalled feed"
                    time.sleep(0.05)
                waits = laredo_waits(stub, AT)
                assert waits[pb.CROSSING_LANE_STANDARD].source == pb.WAIT_SOURCE_LIVE
                assert waits[pb.CROSSING_LANE_STANDARD].expected_wait_minutes == 45
        finally:
            handler.release.set()
            running.stop(0)
    stalls = [r for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalls) == 1, [r.getMessage() for r in caplog.records]
    assert "27.5" not in caplog.text and "-99." not in caplog.text  # no coordinates, no feed content


def test_sigterm_during_a_stalled_poll_returns_promptly(trickle, tmp_path):
    """The server's own poller is mid-fetch on a trickling feed when SIGTERM comes: the process exits
    without waiting for the fetch (a generous bound; before, the poller held shutdown ~16 s)."""
    url, handler = trickle
    handler.max_bytes = 10_000  # trickles for as long as anyone listens
    address = f"127.0.0.1:{free_port()}"
    env = clean_env(ROUTERISK_BORDER_FEED_URL=url, ROUTERISK_GRACE_SECONDS="1", ROUTERISK_METRICS_ADDRESS="")
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=env)
    try:
        wait_serving(address)
        assert handler.started.wait(30), "the server never polled the feed"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=8) == 0, (tmp_path / "serve.log").read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_the_poller_honours_the_standard_proxy_variables(monkeypatch):
    """As urllib did: HTTP_PROXY takes the absolute URL (the feed's host need not resolve here)."""
    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{httpd.server_address[1]}")
        poller = FeedPoller("http://feed.invalid/api/bwtnew", 60, lambda obs, _src: None, timeout_s=5)
        assert poller.poll_once() == 0
        assert seen == ["http://feed.invalid/api/bwtnew"]
    finally:
        httpd.shutdown()
