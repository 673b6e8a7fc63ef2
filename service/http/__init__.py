"""The API over HTTP: the Connect protocol (JSON and binary), gRPC-Web, and gRPC over HTTP/2 where
the ASGI server speaks it, with the same use cases, cache, keys, limits and trip store as the
gRPC server it runs beside (:mod:`service.http.server`)."""
