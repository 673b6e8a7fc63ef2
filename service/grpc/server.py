"""Server assembly and lifecycle: bind, load data behind a NOT_SERVING health
status, serve, and drain on SIGTERM/SIGINT (health NOT_SERVING, then ``stop(grace)``)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

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
from service.grpc.aio_calls import AsyncCallInterceptor
from service.grpc.auth import ApiKey, AuthInterceptor, configured_keys
from service.grpc.interceptor import CallInterceptor
from service.grpc.limits import CallSlots, LimitsInterceptor
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
SERVED_NAMES = ("", SERVICE_NAME)  # the names health reports on
T = TypeVar("T")


@dataclass
class RunningServer:
    """A started server and the handles needed to load data into it and stop it. The asyncio
    server (``loop`` set) runs on its own thread's event loop; these methods are called from
    other threads, as for the thread server."""

    server: grpc.Server | grpc.aio.Server
    health: health.HealthServicer | health.aio.HealthServicer
    state: ServingState
    port: int
    watcher: LayerWatcher | None = None
    feed: FeedPoller | None = None
    border_sync: BorderSync | None = None
    loop: EventLoop | None = None
    pools: tuple[futures.ThreadPoolExecutor, ...] = ()
    http: RunningHttp | None = None  # issue 17 hook

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        if self.loop is not None and isinstance(self.health, health.aio.HealthServicer):
            aio_health = self.health
            self.loop.call(lambda: _set_all(aio_health, status))
            return
        if isinstance(self.health, health.HealthServicer):
            for name in SERVED_NAMES:
                self.health.set(name, status)

    def stop(self, grace: float, graceful: bool = True) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace`` seconds (``graceful``:
        health reports NOT_SERVING to its watchers first)."""
        if graceful:
            self._enter_graceful_shutdown()
        for worker in (self.watcher, self.feed, self.border_sync):
            if worker is not None:
                worker.stop()
        server = self.server
        if isinstance(server, grpc.aio.Server) and self.loop is not None:
            stopping = self.loop.submit(lambda: server.stop(grace))
            stop_http(self.http, grace)  # issue 17 hook: both ports drain at once
            stopping.result()
            self.loop.close()
            for pool in self.pools:
                pool.shutdown(wait=False, cancel_futures=True)
        elif isinstance(server, grpc.Server):
            stopped = server.stop(grace)
            stop_http(self.http, grace)  # issue 17 hook: both ports drain at once
            stopped.wait()

    def _enter_graceful_shutdown(self) -> None:
        servicer = self.health
        if isinstance(servicer, health.aio.HealthServicer) and self.loop is not None:
            self.loop.call(servicer.enter_graceful_shutdown)
        elif isinstance(servicer, health.HealthServicer):
            servicer.enter_graceful_shutdown()


async def _set_all(servicer: health.aio.HealthServicer, status: int) -> None:
    for name in SERVED_NAMES:
        await servicer.set(name, status)


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class EventLoop:
    """An asyncio loop on a thread of its own, for the asyncio server: the process's main thread
    keeps polling for signals, and tests and the layer watcher call in from their threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="routerisk-aio", daemon=True)
        self._thread.start()

    def call(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``work()`` on the loop and wait for its result (never from the loop's own thread)."""
        return self.submit(work).result()

    def submit(self, work: Callable[[], Coroutine[Any, Any, T]]) -> futures.Future[T]:
        """Start ``work()`` on the loop; its future."""
        return asyncio.run_coroutine_threadsafe(work(), self.loop)

    def close(self) -> None:
        """Stop the loop once the tasks left (calls the server cancelled at its stop) have ended:
        a task dropped unfinished would end in the garbage collector, with a traceback."""
        self.call(_cancel_the_rest)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


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
    keys = configured_keys(settings.api_keys, settings.api_keys_file)
    if not keys:
        log.warning("authentication is off: no API keys configured (ROUTERISK_API_KEYS_FILE)")
    trips = TripStore(
        settings.trip_store_max_trips,
        settings.trip_store_ttl_seconds,
        # with Redis, trip states are shared: a stream resumed on another replica continues there
        shared=RedisTrips(redis_cache, settings.trip_store_ttl_seconds)
        if isinstance(redis_cache, RedisCache)
        else None,
    )
    limits = limits_for(settings)  # shared by both servers' calls and the HTTP port
    # the concurrency slots, global (the limits' own) and per tenant: one cap for both transports
    limit = settings.max_concurrent_rpcs or settings.max_workers
    slots = CallSlots(limit, settings.max_concurrent_rpcs_per_tenant, limits._slots)
    parts = Parts(settings, state, cache, trips, keys, limits, slots)
    running = _start_threads(parts) if settings.server_kind == "threads" else _start_aio(parts)
    try:
        running.http = start_http(settings, state, cache, trips, keys, limits, slots)  # issue 17 hook
    except BaseException:  # the HTTP port cannot open (in use, say): no gRPC server left running
        running.stop(0, graceful=False)
        raise
    metrics.watch_state(state)  # layer and border gauges are read from the snapshot at scrape time
    running.set_serving(False)
    return running


class Parts(NamedTuple):
    """What either server is built from."""

    settings: Settings
    state: ServingState
    cache: Cache
    trips: TripStore
    keys: list[ApiKey]
    limits: LimitsInterceptor
    slots: CallSlots


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """The channel arguments of the server: message sizes, streams per connection, keepalive and
    the connections' idle and age limits (a setting of 0 leaves gRPC's default)."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # several worker processes share one port (routerisk serve --workers N)
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        # Bounds what one connection can queue in gRPC core before the server has looked at them:
        # past ``grpc.server.max_pending_requests`` (1,000) such calls, core drops new ones with a
        # bare CANCELLED. The limit is announced in the HTTP/2 SETTINGS: clients hold further calls
        # until a stream ends; a client that sends them anyway gets REFUSED_STREAM (UNAVAILABLE,
        # never processed, safe to retry).
        ("grpc.max_concurrent_streams", settings.max_streams_per_connection),
        # clients' keepalive pings are accepted also between calls, no more often than this
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", settings.min_client_ping_interval_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
    ]
    optional = (
        # the server pings quiet connections: a peer gone without a FIN is found and its calls end
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        # a connection without calls is closed; an old one is asked to reconnect (which spreads
        # long-lived clients over replicas), its open calls given the grace to end
        ("grpc.max_connection_idle_ms", settings.max_connection_idle_ms),
        ("grpc.max_connection_age_ms", settings.max_connection_age_ms),
        ("grpc.max_connection_age_grace_ms", settings.max_connection_age_grace_ms),
    )
    return options + [(name, value) for name, value in optional if value > 0]


def _start_threads(parts: Parts) -> RunningServer:
    """The thread-per-call server (``ROUTERISK_SERVER_KIND=threads``): each call holds a handler
    thread and a concurrency slot from its arrival, its request read or not."""
    settings, state, cache, trips, keys, limits, _ = parts
    limit = settings.max_concurrent_rpcs or settings.max_workers
    # spare threads beyond the API limit: health checks and fast rejections never queue behind work;
    # trip streams (MonitorTrip) hold a thread each for as long as they are open, so they get their own
    executor = futures.ThreadPoolExecutor(max_workers=limit + settings.max_trip_streams + SPARE_THREADS)
    interceptors = [CallInterceptor(AuthInterceptor(keys), limits)]
    server = grpc.server(executor, options=server_options(settings), interceptors=interceptors)
    service_handlers(state, settings, cache, trips).add_to(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = _bind_open(server, settings)
    server.start()
    return RunningServer(server, health_servicer, state, port)


def _start_aio(parts: Parts) -> RunningServer:
    """The asyncio server (:mod:`service.grpc.aio_calls`): a call holds a thread only while its
    complete request is worked on, and a concurrency slot only then."""
    settings, state, cache, trips, keys, limits, slots = parts
    # exactly one thread per concurrency slot: an admitted call never waits for a thread
    calls = futures.ThreadPoolExecutor(max_workers=slots.count, thread_name_prefix="routerisk-call")
    # any synchronous handler gRPC meets (health, reflection)
    spare = futures.ThreadPoolExecutor(max_workers=SPARE_THREADS, thread_name_prefix="routerisk-spare")
    # MonitorTrip's positions, one at a time per stream: a thread per open stream at most, so one
    # stream's Redis round trip never holds up the positions of the others
    trip_pool = futures.ThreadPoolExecutor(
        max_workers=max(settings.max_trip_streams, SPARE_THREADS), thread_name_prefix="routerisk-trip"
    )
    handlers = service_handlers(state, settings, cache, trips, trip_pool=trip_pool)
    interceptor = AsyncCallInterceptor(
        AuthInterceptor(keys),
        limits,
        slots,
        calls,
        settings.request_read_timeout_seconds,
        handlers.memorised,
    )
    loop = EventLoop()

    async def start() -> RunningServer:
        server = grpc.aio.server(spare, interceptors=[interceptor], options=server_options(settings))
        handlers.add_to(server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        port = _bind_open(server, settings)
        await server.start()
        return RunningServer(server, health_servicer, state, port, loop=loop, pools=(calls, spare, trip_pool))

    try:
        return loop.call(start)
    except BaseException:
        loop.close()
        raise


def _bind_open(server: grpc.Server | grpc.aio.Server, settings: Settings) -> int:
    """Reflection on, then the port bound (an error when it cannot be)."""
    names = (SERVICE_NAME, ADMIN_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    port = _bind(server, settings)
    if port == 0:
        raise OSError(f"cannot listen on {settings.address}")
    return port


def limits_for(settings: Settings) -> LimitsInterceptor:
    """The rate limit, deadline cap and trip-stream caps (and the thread server's concurrency cap)."""
    return LimitsInterceptor(
        settings.max_concurrent_rpcs or settings.max_workers,
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
        settings.deadline_cap_seconds,
        settings.max_trip_streams,
        settings.max_trip_streams_per_tenant,
    )


def interceptors_for(settings: Settings, keys: list[ApiKey]) -> list[grpc.ServerInterceptor]:
    """The thread server's interceptors: one, doing what metrics, the request log, authentication
    and limits do in that order (so calls refused by authentication or limits are counted and logged too)."""
    return [CallInterceptor(AuthInterceptor(keys), limits_for(settings))]


@dataclass
class Handlers:
    """The method handlers of RouteRiskService and RouteRiskAdminService (health and reflection
    apart), as the generated ``add_*_to_server`` functions register them."""

    generic: list[grpc.GenericRpcHandler] = field(default_factory=list)
    registered: dict[str, dict[str, grpc.RpcMethodHandler]] = field(default_factory=dict)
    # full method name → the answer from memory the asyncio server gives on its loop (None: the handler)
    memorised: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def add_generic_rpc_handlers(self, handlers: tuple[grpc.GenericRpcHandler, ...]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.registered[service] = handlers

    def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(tuple(self.generic))
        for service, handlers in self.registered.items():
            server.add_registered_method_handlers(service, handlers)


def service_handlers(
    state: ServingState,
    settings: Settings,
    cache: Cache,
    trips: TripStore | None = None,
    trip_pool: futures.Executor | None = None,
) -> Handlers:
    """The API's method handlers over ``state``; with ``trip_pool`` (the asyncio server),
    MonitorTrip is the servicer's async stream answering positions on that pool."""
    handlers = Handlers()
    api = RouteRiskServicer(state, settings, cache, trips, trip_pool)
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
    if trip_pool is not None:
        handlers.memorised[f"/{SERVICE_NAME}/ScoreRoute"] = api.score_route_memorised
        handlers.registered[SERVICE_NAME]["MonitorTrip"] = grpc.stream_stream_rpc_method_handler(
            api.monitor_trip_async,
            request_deserializer=pb.MonitorTripRequest.FromString,
            response_serializer=pb.MonitorTripResponse.SerializeToString,
        )
    handlers.generic = [
        grpc.method_handlers_generic_handler(name, methods) for name, methods in handlers.registered.items()
    ]
    return handlers


def _serialized(response: bytes | pb.ScoreRouteResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def _bind(server: grpc.Server | grpc.aio.Server, settings: Settings) -> int:
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
    configure_tracing(aio=settings.server_kind == "aio")
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
