"""The ASGI application of the HTTP port: the two Connect services behind a guard that answers
what the Connect library would leave to chance or answer without a body.

- a body of a content type no codec reads: 415 with a Connect error (the library's has no body);
- a path that is no method of ours: 404 with a Connect error (``unimplemented``), as Connect
  clients expect, instead of an empty 404;
- a body declared larger than the limit: 413 at once, before any of it is read; a body without a
  length that grows past it: 413 once it does (the read stops there);
- a body that trickles: ``deadline_exceeded`` once the body timeout passes (the read awaits on
  the event loop, so a slow client holds no thread and no API slot meanwhile);
- gRPC proper (``application/grpc``) where the server cannot send trailers (HTTP/1.1):
  415 with a Connect error saying to use gRPC-Web, Connect or the gRPC port;
- ``GET /healthz``: 200 while the server has data to serve, 503 before (the HTTP probes);
- ``GET /``: the dispatcher page, and ``POST /ui/map`` the map it shows (:mod:`service.http.page`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from service.http.page import HTML, MAP_PATH, PAGE, MapDrawer, logged

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
# what the Connect library decodes: Connect unary and streams, gRPC-Web, gRPC (binary and JSON)
CONTENT_TYPES = frozenset(
    f"application/{prefix}{codec}".encode()
    for prefix in ("", "connect+", "grpc-web+", "grpc+")
    for codec in ("json", "proto")
) | {b"application/grpc", b"application/grpc-web"}


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    timeout_s: float


# the HTTP status of each Connect code (the Connect protocol's table), for answers written here
HTTP_STATUS = {
    Code.CANCELED: 499,
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.OUT_OF_RANGE: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.ABORTED: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}


def error_body(code: Code, message: str) -> bytes:
    """A Connect error as JSON (what the library writes for errors raised by handlers)."""
    return json.dumps({"code": code.value, "message": message}).encode()


def error_response(error: ConnectError) -> tuple[int, bytes]:
    """A Connect error as the library answers it: its status, and JSON with its details."""
    data: dict[str, Any] = {"code": error.code.value, "message": error.message}
    if error.details:
        data["details"] = [
            {"type": d.type_name, "value": base64.b64encode(d.message_bytes).decode().rstrip("=")}
            for d in error.details
        ]
    return HTTP_STATUS.get(error.code, 500), json.dumps(data).encode()


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or JSON_HEADERS})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _GuardedBody:
    """``receive`` with the size limit and the body timeout; ``send`` turning the library's
    ``resource_exhausted`` for an oversized body into 413."""

    def __init__(self, receive: Receive, send: Send, limits: BodyLimits) -> None:
        self._receive, self._send, self._limits = receive, send, limits
        self._read = 0
        self._deadline = time.monotonic() + limits.timeout_s
        self._body_done = False
        self.too_large = False

    async def receive(self) -> Message:
        if self._body_done:  # after the body: disconnect watching, no deadline of ours
            return await self._receive()
        try:
            message = await asyncio.wait_for(self._receive(), max(self._deadline - time.monotonic(), 0.0))
        except TimeoutError:
            raise ConnectError(
                Code.DEADLINE_EXCEEDED, f"the request body did not arrive within {self._limits.timeout_s:g}s"
            ) from None
        if message["type"] == "http.request":
            self._read += len(message.get("body", b""))
            if self._read > self._limits.max_bytes:
                self.too_large = True
                raise ConnectError(Code.RESOURCE_EXHAUSTED, f"the body is over {self._limits.max_bytes} bytes")
            self._body_done = not message.get("more_body", False)
        return message

    async def body(self) -> bytes:
        """The whole body, read through :meth:`receive` (its size limit and timeout)."""
        chunks = []
        while not self._body_done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ConnectError(Code.CANCELED, "the client went away")
            chunks.append(message.get("body", b""))
        return b"".join(chunks)

    async def send(self, message: Message) -> None:
        if self.too_large and message["type"] == "http.response.start":
            message = {**message, "status": 413}
        await self._send(message)


class HttpApp:
    """Routes ``/<service>/<method>`` to the service's Connect application, through the guard."""

    def __init__(
        self,
        services: Mapping[str, AsgiApp],
        methods: frozenset[str],
        limits: BodyLimits,
        ready: Callable[[], bool],
        drawer: MapDrawer,
    ) -> None:
        self._drawer = drawer
        self._services = dict(services)
        self._methods = methods
        self._limits = limits
        self._ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; no websockets
        path: str = scope["path"]
        if path == "/healthz":
            ready = self._ready()
            status = b"SERVING" if ready else b"NOT_SERVING"
            await respond(send, 200 if ready else 503, b'{"status":"' + status + b'"}')
            return
        if path == "/" and scope["method"] in ("GET", "HEAD"):
            await respond(send, 200, PAGE, [(b"content-type", HTML.encode()), (b"cache-control", b"no-cache")])
            return
        if path == MAP_PATH and scope["method"] == "POST":
            await self._map(scope, receive, send)
            return
        service, _, _ = path.lstrip("/").partition("/")
        app = self._services.get(service)
        if app is None or path not in self._methods:
            await respond(send, 404, error_body(Code.UNIMPLEMENTED, f"no such method: {path[:200]}"))
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await respond(send, *refusal)
            return
        guard = _GuardedBody(receive, send, self._limits)
        await app(scope, guard.receive, guard.send)

    async def _map(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The dispatcher page's map: its body read under the same limits, its errors as the API's."""
        refusal = self._refusal(scope)
        if refusal is not None:
            await respond(send, *refusal)
            return
        guard = _GuardedBody(receive, send, self._limits)
        headers = dict(scope.get("headers") or ())
        authorization = headers.get(b"authorization", b"").decode("latin-1")

        async def work() -> str:
            return await self._drawer.draw(guard.body, authorization)

        try:
            page = await logged("DispatcherMap", work)
        except ConnectError as error:
            status, body = error_response(error)
            await respond(send, 413 if guard.too_large else status, body)
            return
        await respond(send, 200, page.encode(), [(b"content-type", HTML.encode())])

    def _refusal(self, scope: Scope) -> tuple[int, bytes] | None:
        """What is refused before the library sees the call: an announced oversized body, gRPC without trailers."""
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self._limits.max_bytes:
            return 413, error_body(Code.RESOURCE_EXHAUSTED, f"the body is over {self._limits.max_bytes} bytes")
        content_type = headers.get(b"content-type", b"").lower()
        if scope["method"] != "GET" and content_type.split(b";", 1)[0].strip() not in CONTENT_TYPES:
            shown = content_type[:100].decode("latin-1")
            return 415, error_body(Code.INVALID_ARGUMENT, f"content type {shown!r}: send application/json or proto")
        trailers = "http.response.trailers" in (scope.get("extensions") or {})
        grpc = content_type.startswith(b"application/grpc") and not content_type.startswith(b"application/grpc-web")
        if grpc and not trailers:
            message = "gRPC needs HTTP/2 trailers: use gRPC-Web or Connect on this port, or the gRPC port"
            return 415, error_body(Code.UNIMPLEMENTED, message)
        return None
