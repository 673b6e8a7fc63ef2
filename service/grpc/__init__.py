"""The gRPC adapter: server, servicers (convert → use case → convert), converters, error mapping,
and the interceptors (auth, limits, metrics, request log, tracing)."""
