"""One connection cannot hold more than ``ROUTERISK_MAX_STREAMS_PER_CONNECTION`` open calls: the
server announces the limit in its HTTP/2 SETTINGS, so a gRPC client holds the next call until a
stream ends (a client that sends it anyway is refused with REFUSED_STREAM, UNAVAILABLE, without
reaching a handler); other connections are not affected. This is what keeps one client from filling gRPC core's
queue of calls waiting for the server's dispatch thread (past 1,000 of them, core itself drops
new calls with a bare CANCELLED: docs/reliability.md)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import Settings
from service.grpc.server import load_data, server_options, start_server

LIMIT = 3


def test_calls_past_the_per_connection_limit_are_refused_unprocessed():
    settings = Settings(address="127.0.0.1:0", max_streams_per_connection=LIMIT, log_format="json")
    running = start_server(settings)
    load_data(running, settings)
    address = f"127.0.0.1:{running.port}"
    watches = []
    try:
        # channels to one target share one connection unless told otherwise
        own = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(address, own) as busy, grpc.insecure_channel(address, own) as other:
            health = health_pb2_grpc.HealthStub(busy)
            # Watch streams stay open until cancelled: LIMIT of them fill the connection
            for _ in range(LIMIT):
                watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=60)
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
                watches.append(watch)
            queued = health.Check.future(health_pb2.HealthCheckRequest(), timeout=60)
            # another connection is served meanwhile; the queued call cannot be while LIMIT are open
            reply = health_pb2_grpc.HealthStub(other).Check(health_pb2.HealthCheckRequest(), timeout=60)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            # held while LIMIT are open (without the limit it is answered in milliseconds)
            with pytest.raises(grpc.FutureTimeoutError):
                queued.result(timeout=3)
            # once a stream ends, the held call goes through
            watches.pop().cancel()
            assert queued.result(timeout=60).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        for watch in watches:
            watch.cancel()
        # not running.stop(): grpc_health's enter_graceful_shutdown sends to every Watch under its
        # lock while a just-cancelled Watch's close callback waits for that lock (a deadlock seen
        # once); this test needs no graceful shutdown, so the server is stopped without it
        running.stop(0, graceful=False)


def test_keepalive_and_connection_limits_are_passed_to_grpc():
    settings = Settings(keepalive_time_ms=30_000, max_connection_idle_ms=0, max_connection_age_ms=600_000)
    options = dict(server_options(settings))
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.keepalive_timeout_ms"] == settings.keepalive_timeout_ms
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == settings.min_client_ping_interval_ms
    assert options["grpc.max_connection_age_ms"] == 600_000
    assert options["grpc.max_connection_age_grace_ms"] == settings.max_connection_age_grace_ms
    assert "grpc.max_connection_idle_ms" not in options  # 0: gRPC's default (never)
    assert options["grpc.max_concurrent_streams"] == settings.max_streams_per_connection
