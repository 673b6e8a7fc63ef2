"""Optional OpenTelemetry tracing, switched on by the standard ``OTEL_*`` variables.

``OTEL_TRACES_EXPORTER`` (``otlp`` by default when an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` is set,
or ``console``), ``OTEL_SERVICE_NAME``, ``OTEL_SDK_DISABLED``: nothing routerisk-specific.
Needs the ``otel`` extra (``pip install 'routerisk[otel]'``). Spans carry the RPC method
and status, never request contents.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def tracing_requested() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").lower()
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return exporter not in ("", "none") or bool(endpoint)


def configure_tracing(aio: bool = False) -> bool:
    """Install a tracer provider and instrument the gRPC server (``aio``: the asyncio one); call
    before creating it."""
    if not tracing_requested():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer, GrpcInstrumentorServer
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables are set but the 'otel' extra is not installed; tracing stays off")
        return False
    name = os.environ.get("OTEL_SERVICE_NAME", "routerisk")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    (GrpcAioInstrumentorServer() if aio else GrpcInstrumentorServer()).instrument()
    log.info("tracing on", extra={"service_name": name})
    return True


def shutdown_tracing() -> None:
    """Send the spans still buffered (the batch processor's): called once the server has drained,
    before the process exits without running interpreter finalization."""
    if not tracing_requested():
        return
    try:
        from opentelemetry import trace
    except ImportError:
        return
    shutdown = getattr(trace.get_tracer_provider(), "shutdown", None)
    if shutdown is not None:
        shutdown()
