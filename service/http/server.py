"""The HTTP port's lifecycle: uvicorn on a thread (and an event loop) of its own, in the gRPC
server's process, serving the same state, cache, keys, limits and trip store.

:func:`start_http` binds the socket itself, so a taken port fails the server's start as the gRPC
port does and port 0 works in tests; it returns once uvicorn accepts connections. With several
worker processes (``routerisk serve --workers N``) each binds the port with ``SO_REUSEPORT``.
:func:`stop_http` stops accepting, lets calls in flight finish within the grace period, then
joins the thread and the handlers' pool.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from routerisk.v1 import route_risk_admin_service_connect as admin_connect
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_service_connect as pb_connect
from routerisk.v1 import route_risk_service_pb2 as pb
from service.config import Settings
from service.grpc.auth import ApiKey, AuthInterceptor
from service.grpc.limits import CallSlots, LimitsInterceptor
from service.grpc.servicer import RouteRiskServicer
from service.http.app import BodyLimits, HttpApp
from service.http.calls import Authenticate, CallLog, Runner
from service.http.codec import CODECS
from service.http.page import MapDrawer
from service.http.services import RouteRiskAdminConnect, RouteRiskConnect
from service.store.cache import Cache
from service.store.serving import ServingState
from service.usecases.trip_monitor import TripStore

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0
STARTUP_POLL_S = 0.01


@dataclass
class RunningHttp:
    """A started HTTP port and what stopping it needs."""

    server: uvicorn.Server
    thread: threading.Thread
    runner: Runner
    port: int


def build_app(
    settings: Settings,
    state: ServingState,
    cache: Cache,
    trips: TripStore,
    keys: list[ApiKey],
    runner: Runner,
) -> HttpApp:
    """The ASGI application over the gRPC server's own state, cache, trips and keys (and, through
    ``runner``, its limits)."""
    auth = AuthInterceptor(keys)
    interceptors = (CallLog(), Authenticate(auth, bool(keys)))
    servicer = RouteRiskServicer(state, settings, cache, trips)
    max_bytes = settings.http_max_body_bytes
    api = pb_connect.RouteRiskServiceASGIApplication(
        RouteRiskConnect(servicer, runner),
        interceptors=interceptors,
        codecs=CODECS,
        read_max_bytes=max_bytes,
    )
    admin = admin_connect.RouteRiskAdminServiceASGIApplication(
        RouteRiskAdminConnect(state, settings, runner),
        interceptors=interceptors,
        codecs=CODECS,
        read_max_bytes=max_bytes,
    )
    services = {app.path.lstrip("/"): app for app in (api, admin)}
    descriptors = (pb.DESCRIPTOR.services_by_name.values(), admin_pb.DESCRIPTOR.services_by_name.values())
    methods = frozenset(f"/{s.full_name}/{m.name}" for group in descriptors for s in group for m in s.methods)
    return HttpApp(
        services,
        methods,
        BodyLimits(settings.http_max_body_bytes, settings.http_body_timeout_seconds),
        ready=lambda: state.snapshot is not None,
        drawer=MapDrawer(servicer, settings.max_route_points, auth, bool(keys), runner),
    )


def start_http(
    settings: Settings,
    state: ServingState,
    cache: Cache,
    trips: TripStore,
    keys: list[ApiKey],
    limits: LimitsInterceptor,
    slots: CallSlots,
) -> RunningHttp | None:
    """Serve the HTTP port on ``settings.http_address`` (None when it is empty: the port is off)."""
    if not settings.http_address:
        return None
    sock = _bind(settings.http_address, reuse_port=settings.workers > 1)
    threads = settings.max_concurrent_rpcs or settings.max_workers
    runner = Runner(limits, slots, threads)
    app = build_app(settings, state, cache, trips, keys, runner)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,  # the process's JSON logging applies
        access_log=False,  # one "rpc" line per call comes from service.http.calls instead
        timeout_graceful_shutdown=max(round(settings.grace_seconds), 1),
        # connections and calls held at once: a client that trickles its headers holds a connection
        # (uvicorn has no header timeout), so many of them get 503 here instead of piling up
        limit_concurrency=settings.http_max_connections,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
        ssl_ca_certs=settings.tls_client_ca_file,
        ssl_cert_reqs=2 if settings.tls_client_ca_file else 0,  # ssl.CERT_REQUIRED with a client CA
    )
    # uvicorn's protocol decides to write its access line from the logger's handlers, whatever
    # access_log says: off for good (its lines carry client addresses and no request id)
    logging.getLogger("uvicorn.access").disabled = True
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="routerisk-http", daemon=True)
    thread.start()
    port = sock.getsockname()[1]
    _wait_started(server, thread)
    log.info("http listening", extra={"address": settings.http_address, "port": port})
    return RunningHttp(server, thread, runner, port)


def stop_http(running: RunningHttp | None, grace: float) -> None:
    """Stop accepting, let calls in flight finish within ``grace`` seconds, release the threads."""
    if running is None:
        return
    running.server.should_exit = True
    running.thread.join(grace + 5.0)
    running.runner.close()


def _bind(address: str, reuse_port: bool) -> socket.socket:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, int(port)), family=family, reuse_port=reuse_port)
    # accepted connections inherit it (Linux): uvicorn writes a response's head and body apart, and
    # with Nagle on, the body waits for the client's delayed ACK (40 ms per call, measured)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    """Return once uvicorn accepts connections; raise when its thread died first."""
    give_up = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > give_up:
            raise OSError("the HTTP port did not start")
        time.sleep(STARTUP_POLL_S)
