"""Prometheus metrics: per-RPC counts and latencies, what is being served, and the /metrics endpoint.

* :class:`MetricsInterceptor` counts ``routerisk_rpcs_total{method, code}`` and observes
  ``routerisk_rpc_duration_seconds{method}`` for every unary-unary call; stream-stream calls
  (MonitorTrip, open for a whole trip) are counted when they end but not timed, so hours-long
  streams do not swamp the latency histogram; other kinds pass through.
* ``routerisk_layer_info{version, synthetic}``, ``routerisk_layer_age_seconds`` and
  ``routerisk_border_data_age_seconds{port}`` are computed *at scrape time* from the layer and
  border data last given to :func:`set_layer` / :func:`set_border`, or from the current snapshot
  of any :class:`SnapshotSource` (the :class:`~service.store.serving.ServingState`) given to
  :func:`watch_state`: metrics receive what they report, they do not import the store. Ages therefore keep
  growing when nothing new arrives (a stalled feed shows up as a rising age), and a swapped layer
  replaces its ``routerisk_layer_info`` series (the old label set disappears).
* ``routerisk_cache_requests_total{result}`` lives in :mod:`service.store.cache`; the Redis metrics in
  :mod:`service.store.redis_client`. All of them are in the default registry.
* :func:`start_metrics_server` serves the default registry over HTTP (``/metrics``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from geodata.border import BorderData
    from geodata.layers import RiskLayer

# 0.5 ms … 10 s: cache hits are sub-millisecond, long corridors and batches take seconds
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPCS = Counter("routerisk_rpcs", "gRPC calls handled, by method and status code", ["method", "code"])
RPC_DURATION = Histogram(
    "routerisk_rpc_duration_seconds", "Time spent handling a gRPC call", ["method"], buckets=DURATION_BUCKETS
)


def short_method(full_method: str) -> str:
    """``/routerisk.v1.RouteRiskService/ScoreRoute`` → ``ScoreRoute``."""
    return full_method.rsplit("/", 1)[-1] or full_method


def rpc_code(context: grpc.ServicerContext, raised: BaseException | None) -> str:
    """The status name a finished unary handler sends, as grpc's sync server decides it.

    ``context.abort``/``abort_with_status`` record the code on the context and raise a bare
    ``Exception``; ``set_code`` records it without raising. grpc sends that code when one was
    recorded, ``UNKNOWN`` for any other exception, else ``OK`` (grpc/_server.py:
    ``_call_behavior``, ``_abortion_code``, ``_completion_code``). A call whose client went away
    (cancelled, deadline exceeded) sends nothing and counts as ``CANCELLED``.
    """
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):  # contexts of grpc < 1.38, or test doubles
        code = None
    if isinstance(code, grpc.StatusCode):
        return code.name
    if raised is not None:
        return grpc.StatusCode.UNKNOWN.name
    try:
        if not context.is_active():
            return grpc.StatusCode.CANCELLED.name
    except (AttributeError, NotImplementedError):
        pass
    return grpc.StatusCode.OK.name


Behaviour = Callable[[Any, grpc.ServicerContext], Any]


def wrap_unary(
    handler: grpc.RpcMethodHandler | None, wrap: Callable[[Behaviour], Behaviour]
) -> grpc.RpcMethodHandler | None:
    """The handler with its unary-unary behaviour wrapped; other kinds (and None) unchanged."""
    if handler is None or handler.request_streaming or handler.response_streaming or handler.unary_unary is None:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        wrap(handler.unary_unary),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def wrap_stream(
    handler: grpc.RpcMethodHandler | None, wrap: Callable[[Behaviour], Behaviour]
) -> grpc.RpcMethodHandler | None:
    """The handler with its stream-stream behaviour wrapped (``wrap`` must return a generator
    function, so that it runs while the stream does); other kinds (and None) unchanged."""
    if handler is None or handler.stream_stream is None:
        return handler
    return handler._replace(stream_stream=wrap(handler.stream_stream))


def stream_code(context: grpc.ServicerContext, raised: BaseException | None) -> str:
    """:func:`rpc_code` for a stream; a generator closed early (GeneratorExit) is a cancelled call."""
    return rpc_code(context, None if isinstance(raised, GeneratorExit) else raised)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts every unary-unary call by method and status code and times it.

    Methods are labelled by their short name (``ScoreRoute``, health's ``Check``); only methods the
    server has a handler for are counted, so unknown names from callers cannot add series.
    Put it first in ``grpc.server(interceptors=[...])`` so that calls rejected by later
    interceptors (authentication, limits) are counted and timed too.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = short_method(handler_call_details.method)

        def wrap(behaviour: Behaviour) -> Behaviour:
            def observed(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                raised: BaseException | None = None
                try:
                    return behaviour(request, context)
                except BaseException as exc:
                    raised = exc
                    raise
                finally:
                    RPC_DURATION.labels(method).observe(time.perf_counter() - start)
                    RPCS.labels(method, rpc_code(context, raised)).inc()

            return observed

        def wrap_streams(behaviour: Behaviour) -> Behaviour:
            def counted(requests: Any, context: grpc.ServicerContext) -> Any:
                raised: BaseException | None = None
                try:
                    yield from behaviour(requests, context)
                except BaseException as exc:
                    raised = exc
                    raise
                finally:
                    RPCS.labels(method, stream_code(context, raised)).inc()

            return counted

        return wrap_stream(wrap_unary(continuation(handler_call_details), wrap), wrap_streams)


class Served(Protocol):
    """What a snapshot of served data offers the gauges."""

    @property
    def layer(self) -> RiskLayer: ...

    @property
    def border(self) -> BorderData: ...


class SnapshotSource(Protocol):
    """Whatever holds the snapshot being served (``None`` while loading)."""

    @property
    def snapshot(self) -> Served | None: ...


class ServingCollector:
    """Layer and border gauges computed from the data being served at scrape time.

    * ``routerisk_layer_info{version, synthetic="true"|"false"} 1``: one series, the current layer.
    * ``routerisk_layer_age_seconds``: now − the layer's ``period_end_s`` (its newest incident);
      no sample when the layer has no period (no incidents).
    * ``routerisk_border_data_age_seconds{port}``: now − the newest live observation of the port
      (any lane). Ports without live observations get **no sample** (not NaN), so
      ``max(routerisk_border_data_age_seconds) > 900`` alerts on stale live data and
      ``absent(...)`` on none at all.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.layer: RiskLayer | None = None
        self.border: BorderData | None = None
        self.state: SnapshotSource | None = None
        self._lock = threading.Lock()

    def current(self) -> tuple[RiskLayer | None, BorderData | None]:
        with self._lock:
            layer, border, state = self.layer, self.border, self.state
        snapshot = state.snapshot if state is not None else None
        if snapshot is not None:
            return snapshot.layer, snapshot.border
        return layer, border

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info, age, border_age = self._families()
        layer, border = self.current()
        now = self.clock()
        if layer is not None:
            info.add_metric([layer.version, "true" if layer.synthetic else "false"], 1.0)
            period_end = int(layer.metadata.get("period_end_s") or 0)
            if period_end > 0:
                age.add_metric([], now - period_end)
        if border is not None:
            newest: dict[str, int] = {}
            for obs in border.observations.values():
                newest[obs.port_number] = max(newest.get(obs.port_number, 0), obs.observed_at_s)
            for port in sorted(newest):
                border_age.add_metric([port], now - newest[port])
        yield from (info, age, border_age)

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "routerisk_layer_info", "The incident layer being served (always 1)", labels=["version", "synthetic"]
            ),
            GaugeMetricFamily(
                "routerisk_layer_age_seconds", "Seconds since the newest incident of the layer being served"
            ),
            GaugeMetricFamily(
                "routerisk_border_data_age_seconds",
                "Seconds since the newest live wait observation of a port of entry (ports with live data only)",
                labels=["port"],
            ),
        ]


SERVING = ServingCollector()
REGISTRY.register(SERVING)


def set_layer(layer: RiskLayer | None) -> None:
    """Report this layer as served (unless :func:`watch_state` supplies a snapshot)."""
    with SERVING._lock:
        SERVING.layer = layer


def set_border(border: BorderData | None) -> None:
    """Report this border data as served (unless :func:`watch_state` supplies a snapshot).
    Ages are computed at scrape time, so there is no ``now`` to pass."""
    with SERVING._lock:
        SERVING.border = border


def watch_state(state: SnapshotSource | None) -> SnapshotSource | None:
    """Read the layer and border gauges from ``state.snapshot`` at every scrape (every swap,
    however it happens, is seen without further calls). Returns the previously watched state."""
    with SERVING._lock:
        previous, SERVING.state = SERVING.state, state
    return previous


@dataclass
class MetricsServer:
    """A running /metrics HTTP server."""

    host: str
    port: int
    _httpd: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(address: str = "0.0.0.0:9090", registry: CollectorRegistry = REGISTRY) -> MetricsServer:
    """Serve ``registry`` on ``http://host:port/metrics`` from a daemon thread.

    ``address`` is ``host:port`` (``[::]:9090`` for IPv6); port 0 picks a free port, read it
    from the returned ``.port``. Raises ``OSError`` when the address cannot be bound.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"metrics address must be host:port, not {address!r}")
    host = host.strip("[]") or "0.0.0.0"
    httpd, thread = start_http_server(int(port_text), addr=host, registry=registry)
    thread.name = "metrics-http"
    return MetricsServer(host, int(httpd.server_port), httpd, thread)
