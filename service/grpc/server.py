"""Server assembly and lifecycle: bind, load data behind a NOT_SERVING health
status, serve, and drain on SIGTERM/SIGINT (health NOT_SERVING, then ``stop(grace)``)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from geodata.layer_store import LayerStore
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service import logs
from service.config import Settings
from service.grpc import metrics
from service.grpc.admin_servicer import RouteRiskAdminServicer
from service.grpc.auth import ApiKey, AuthInterceptor, configured_keys
from service.grpc.interceptor import CallInterceptor
from service.grpc.limits import LimitsInterceptor
from service.grpc.metrics import start_metrics_server
from service.grpc.request_log import RequestContextFilter
from service.grpc.servicer import RouteRiskServicer
from service.grpc.tracing import configure_tracing
from service.http.server import RunningHttp, start_http, stop_http  # issue 17 hook: the HTTP/JSON port
from service.store.border_feed import FeedPoller
from service.store.cache import Cache, InProcessCache, NullCache, TieredCache
from service.store.redis_client import EntrySigner, RedisCache, connect
from service.store.replicas import BorderSync, SharedState
from service.store.serving import LayerRefusedError, LayerWatcher, ServingState, initial_border, initial_layer
from service.store.trips import RedisTrips
from service.usecases.trip_monitor import TripStore

log = logging.getLogger(__name__)

SPARE_THREADS = 4
STOP_POLL_SECONDS = 0.2
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RouteRiskService"].full_name
ADMIN_SERVICE_NAME = admin_pb.DESCRIPTOR.services_by_name["RouteRiskAdminService"].full_name


@dataclass
class RunningServer:
    """A started server and the handles needed to load data into it and stop it."""

    server: grpc.Server
    health: health.HealthServicer
    state: ServingState
    port: int
    watcher: LayerWatcher | None = None
    feed: FeedPoller | None = None
    border_sync: BorderSync | None = None
    http: RunningHttp | None = None  # issue 17 hook

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        for worker in (self.watcher, self.feed, self.border_sync):
            if worker is not None:
                worker.stop()
        stopped = self.server.stop(grace)
        stop_http(self.http, grace)  # issue 17 hook: both ports drain at once
        stopped.wait()


def make_cache(settings: Settings) -> Cache:
    """Redis when configured (every replica shares it), else an in-process LRU."""
    if settings.redis_url:
        client = connect(
            settings.redis_url,
            timeout_s=settings.redis_timeout_ms / 1000,
            sentinels=settings.redis_sentinels,
            sentinel_master=settings.redis_sentinel_master,
        )
        key = settings.cache_hmac_key.get_secret_value().encode() if settings.cache_hmac_key else None
        shared = RedisCache(client, settings.redis_prefix, signer=EntrySigner(key))
        if settings.cache_max_entries > 0:
            return TieredCache(InProcessCache(settings.cache_max_entries), shared)
        return shared
    return InProcessCache(settings.cache_max_entries) if settings.cache_max_entries > 0 else NullCache()


def start_server(settings: Settings, state: ServingState | None = None) -> RunningServer:
    """Bind and start; health says NOT_SERVING until :func:`load_data` succeeds."""
    cache = make_cache(settings)
    redis_cache = cache.shared if isinstance(cache, TieredCache) else cache
    shared = SharedState(redis_cache) if isinstance(redis_cache, RedisCache) else None
    state = state or ServingState(shared)
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # several worker processes share one port (routerisk serve --workers N)
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        # Bounds what one connection can queue in gRPC core before the single thread that hands
        # calls to Python has looked at them: past ``grpc.server.max_pending_requests`` (1,000)
        # such calls, core drops new ones with a bare CANCELLED. The limit is announced in the
        # HTTP/2 SETTINGS: clients hold further calls until a stream ends; a client that sends
        # them anyway gets REFUSED_STREAM (UNAVAILABLE, never processed, safe to retry).
        ("grpc.max_concurrent_streams", settings.max_streams_per_connection),
    ]
    limit = settings.max_concurrent_rpcs or settings.max_workers
    keys = configured_keys(settings.api_keys, settings.api_keys_file)
    if not keys:
        log.warning("authentication is off: no API keys configured (ROUTERISK_API_KEYS_FILE)")
    interceptors = interceptors_for(settings, keys)
    # spare threads beyond the API limit: health checks and fast rejections never queue behind work;
    # trip streams (MonitorTrip) hold a thread each for as long as they are open, so they get their own
    executor = futures.ThreadPoolExecutor(max_workers=limit + settings.max_trip_streams + SPARE_THREADS)
    server = grpc.server(executor, options=options, interceptors=interceptors)
    trips = TripStore(
        settings.trip_store_max_trips,
        settings.trip_store_ttl_seconds,
        # with Redis, trip states are shared: a stream resumed on another replica continues there
        shared=RedisTrips(redis_cache, settings.trip_store_ttl_seconds)
        if isinstance(redis_cache, RedisCache)
        else None,
    )
    service_handlers(state, settings, cache, trips).add_to(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (SERVICE_NAME, ADMIN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    port = _bind(server, settings)
    if port == 0:
        raise OSError(f"cannot listen on {settings.address}")
    server.start()
    running = RunningServer(server, health_servicer, state, port)
    running.http = start_http(settings, state, cache, trips, keys, interceptors[0].limits)  # issue 17 hook
    metrics.watch_state(state)  # layer and border gauges are read from the snapshot at scrape time
    running.set_serving(False)
    return running


def interceptors_for(settings: Settings, keys: list[ApiKey]) -> list[grpc.ServerInterceptor]:
    """The server's interceptors: one, doing what metrics, the request log, authentication and
    limits do in that order (so calls refused by authentication or limits are counted and logged too)."""
    limit = settings.max_concurrent_rpcs or settings.max_workers
    limits = LimitsInterceptor(
        limit,
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        settings.deadline_cap_seconds,
        settings.max_trip_streams,
        settings.max_trip_streams_per_tenant,
    )
    return [CallInterceptor(AuthInterceptor(keys), limits)]


@dataclass
class Handlers:
    """The method handlers of RouteRiskService and RouteRiskAdminService (health and reflection
    apart), as the generated ``add_*_to_server`` functions register them."""

    generic: list[grpc.GenericRpcHandler] = field(default_factory=list)
    registered: dict[str, dict[str, grpc.RpcMethodHandler]] = field(default_factory=dict)

    def add_generic_rpc_handlers(self, handlers: tuple[grpc.GenericRpcHandler, ...]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.registered[service] = handlers

    def add_to(self, server: grpc.Server) -> None:
        server.add_generic_rpc_handlers(tuple(self.generic))
        for service, handlers in self.registered.items():
            server.add_registered_method_handlers(service, handlers)


def service_handlers(state: ServingState, settings: Settings, cache: Cache, trips: TripStore | None = None) -> Handlers:
    """The API's method handlers over ``state``."""
    handlers = Handlers()
    api = RouteRiskServicer(state, settings, cache, trips)
    pb_grpc.add_RouteRiskServiceServicer_to_server(api, handlers)
    admin_grpc.add_RouteRiskAdminServiceServicer_to_server(
        RouteRiskAdminServicer(state, settings.border_max_clock_skew_seconds), handlers
    )
    # ScoreRoute may answer with bytes already serialized (a cached answer), passed through as they are
    handlers.registered[SERVICE_NAME]["ScoreRoute"] = grpc.unary_unary_rpc_method_handler(
        api.score_route_wire,
        request_deserializer=pb.ScoreRouteRequest.FromString,
        response_serializer=_serialized,
    )
    handlers.generic = [
        grpc.method_handlers_generic_handler(name, methods) for name, methods in handlers.registered.items()
    ]
    return handlers


def _serialized(response: bytes | pb.ScoreRouteResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def _bind(server: grpc.Server, settings: Settings) -> int:
    """TLS when a certificate is configured (mutual TLS with a client CA), else plaintext."""
    if settings.tls_cert_file is None:
        return server.add_insecure_port(settings.address)
    if settings.tls_key_file is None:
        raise ValueError("ROUTERISK_TLS_CERT_FILE needs ROUTERISK_TLS_KEY_FILE")
    client_ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    credentials = grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    return server.add_secure_port(settings.address, credentials)


def load_data(running: RunningServer, settings: Settings) -> None:
    """Load the configured (or seed) layer and border data, then report SERVING; with a refused
    active layer, report NOT_SERVING until the watcher activates a valid one."""
    shared = running.state.shared
    running.state.hold_border(initial_border(settings))
    refused = None
    try:
        running.state.activate(initial_layer(settings, shared))
    except LayerRefusedError as exc:
        refused = exc.version
    if settings.layer_dir is not None:
        store = LayerStore(settings.layer_dir)
        running.watcher = LayerWatcher(
            running.state,
            store,
            settings.layer_poll_seconds,
            shared,
            failed=refused,
            on_activate=lambda: running.set_serving(True),
        )
        running.watcher.start()
    if shared is not None:
        state = running.state
        running.border_sync = BorderSync(
            shared, lambda obs, now: state.merge_observations(obs, now, publish=False), interval_s=1.0
        )
        running.border_sync.start()
    if settings.border_feed_url:
        state = running.state
        lease_ms = int(settings.border_poll_seconds * 1000 * 0.9)
        running.feed = FeedPoller(
            settings.border_feed_url,
            settings.border_poll_seconds,
            lambda observations, _source: state.merge_observations(observations, int(time.time())),
            settings.border_feed_timeout_seconds,
            # with Redis one replica polls per period and shares the result
            should_poll=(lambda: shared.try_lead("border-poll", lease_ms)) if shared else None,
            connect_timeout_s=settings.border_feed_connect_timeout_seconds,
            read_timeout_s=settings.border_feed_read_timeout_seconds,
            max_clock_skew_s=settings.border_max_clock_skew_seconds,
        )
        running.feed.start()
    snapshot = running.state.snapshot
    if snapshot is None:
        log.error("no valid layer to serve; NOT_SERVING until one is activated", extra={"port": running.port})
        return
    running.set_serving(True)
    log.info(
        "serving",
        extra={
            "port": running.port,
            "layer_version": snapshot.layer.version,
            "layer_synthetic": snapshot.layer.synthetic,
            "layer_cells": len(snapshot.layer.cells),
            "border_version": snapshot.border.version,
        },
    )


def serve(settings: Settings, metrics_address: str | None = None) -> int:
    """Run until SIGTERM or SIGINT; exit code 0 after a clean drain."""
    logs.configure(settings.log_level, settings.log_format, [RequestContextFilter()])
    configure_tracing()
    metrics_server = _start_metrics(settings.metrics_address if metrics_address is None else metrics_address)
    # The handler only appends (no lock: it may interrupt the main thread inside one), and the
    # main thread polls: the kernel may hand the signal to a gRPC thread, and a main thread
    # blocked in Event.wait() without a timeout would never run the Python handler.
    stopping: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: stopping.append(number))
    running = start_server(settings)
    log.info("listening", extra={"address": settings.address, "port": running.port})
    try:
        load_data(running, settings)
    except Exception:
        log.exception("loading layers failed")
        running.stop(0)
        return 1
    while not stopping:
        time.sleep(STOP_POLL_SECONDS)
    log.info("draining", extra={"grace_seconds": settings.grace_seconds})
    running.stop(settings.grace_seconds)
    if metrics_server is not None:
        metrics_server.shutdown()
    log.info("stopped")
    return 0


def serve_workers(settings: Settings) -> int:
    """Fork ``settings.workers`` server processes on one port (SO_REUSEPORT); the kernel
    spreads connections over them, so every core serves. Forking happens before any gRPC
    object exists, as gRPC requires. SIGTERM/SIGINT are passed on; exit 0 when all drained."""
    if settings.workers <= 1:
        return serve(settings)
    if settings.address.rsplit(":", 1)[-1] == "0":
        raise SystemExit("--workers needs a fixed port: the processes must bind the same one")
    logs.configure(settings.log_level, settings.log_format, [RequestContextFilter()])
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(
            target=_worker, args=(settings, _worker_metrics(settings, n)), name=f"routerisk-worker-{n}", daemon=False
        )
        for n in range(settings.workers)
    ]
    for worker in workers:
        worker.start()
    log.info("workers started", extra={"workers": len(workers), "pids": [w.pid for w in workers]})

    def forward(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    for worker in workers:
        worker.join()
    codes = [worker.exitcode for worker in workers]
    log.info("workers stopped", extra={"exit_codes": codes})
    return 0 if all(code == 0 for code in codes) else 1


def _start_metrics(address: str) -> metrics.MetricsServer | None:
    """The /metrics endpoint; a taken port is logged, and serving goes on without it."""
    if not address:
        return None
    try:
        return start_metrics_server(address)
    except OSError as exc:
        log.error("metrics endpoint unavailable; serving without it", extra={"address": address, "error": str(exc)})
        return None


def _worker(settings: Settings, metrics_address: str) -> None:
    logging.getLogger().handlers.clear()
    raise SystemExit(serve(settings, metrics_address))


def _worker_metrics(settings: Settings, number: int) -> str:
    """Each worker process has its own metrics: worker n serves them on the base port + n."""
    if not settings.metrics_address:
        return ""
    host, port = settings.metrics_address.rsplit(":", 1)
    return f"{host}:{int(port) + number}" if int(port) else settings.metrics_address
