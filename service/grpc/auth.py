"""API keys, tenants and per-method permissions, as a gRPC server interceptor.

Keys travel as ``authorization: Bearer <key>`` metadata. Only their SHA-256 is stored
(in ``ROUTERISK_API_KEYS_FILE`` or ``ROUTERISK_API_KEYS``: a JSON list of
``{"sha256": "...", "tenant": "...", "permissions": ["score", "read", "admin"]}``), and a
presented key is compared with every stored hash in constant time. Health and reflection
stay open. Without configured keys, authentication is off (the embedded default).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from service.grpc import request_log

log = logging.getLogger(__name__)

PERMISSIONS = ("score", "read", "admin")
# method → the permission it needs; only methods outside our services are open (health, reflection)
OWN_METHODS_PREFIX = "/routerisk."
METHOD_PERMISSIONS = {
    "/routerisk.v1.RouteRiskService/ScoreRoute": "score",
    "/routerisk.v1.RouteRiskService/BatchScoreRoutes": "score",
    "/routerisk.v1.RouteRiskService/CompareRoutes": "score",
    "/routerisk.v1.RouteRiskService/SuggestDepartures": "score",
    "/routerisk.v1.RouteRiskService/MonitorTrip": "score",
    "/routerisk.v1.RouteRiskService/ReportTripPositions": "score",  # issue 17
    "/routerisk.v1.RouteRiskService/GetCellRisk": "read",
    "/routerisk.v1.RouteRiskService/ListHotspots": "read",
    "/routerisk.v1.RouteRiskService/ListBorderCrossings": "read",
    "/routerisk.v1.RouteRiskService/ExportAvoidAreas": "read",
    "/routerisk.v1.RouteRiskAdminService/LoadBorderObservations": "admin",
}

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")


def permission_for(method: str) -> str | None:
    """The permission ``method`` needs; None for the open ones (health, reflection). A method of
    our own services missing from the table needs ``admin``: a new RPC is closed until listed."""
    needed = METHOD_PERMISSIONS.get(method)
    if needed is None and method.startswith(OWN_METHODS_PREFIX):
        return "admin"
    return needed


@dataclass(frozen=True)
class ApiKey:
    sha256: bytes
    tenant: str
    permissions: frozenset[str]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A random key (256 bits), prefixed so it is recognisable in a secret store."""
    return "rr_" + secrets.token_urlsafe(32)


def load_keys(text: str, source: str) -> list[ApiKey]:
    """Parse the key list; a malformed list is a configuration error (the server does not start)."""
    try:
        entries = json.loads(text)
        keys = [
            ApiKey(bytes.fromhex(e["sha256"]), str(e["tenant"]), frozenset(e.get("permissions", PERMISSIONS)))
            for e in entries
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{source}: API keys must be a JSON list of {{sha256, tenant, permissions}}: {exc}") from exc
    for key in keys:
        if len(key.sha256) != 32 or not key.permissions <= set(PERMISSIONS):
            raise ValueError(f"{source}: bad entry for tenant {key.tenant!r} (sha256 hex, permissions {PERMISSIONS})")
    return keys


def configured_keys(keys_json: str | None, keys_file: Path | None) -> list[ApiKey]:
    if keys_file is not None:
        return load_keys(keys_file.read_text(encoding="utf-8"), str(keys_file))
    if keys_json:
        return load_keys(keys_json, "ROUTERISK_API_KEYS")
    return []


def _abort_handler(code: grpc.StatusCode, message: str, streaming: bool = False) -> grpc.RpcMethodHandler:
    def abort(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    if streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


def _with_tenant(handler: grpc.RpcMethodHandler, tenant: str) -> grpc.RpcMethodHandler:
    if handler.stream_stream is not None:
        streams = handler.stream_stream

        def run_stream(requests: Any, context: grpc.ServicerContext) -> Any:
            request_log.set_tenant(tenant)
            yield from request_log.iterate_with(TENANT, tenant, streams(requests, context))

        return handler._replace(stream_stream=run_stream)
    behaviour = handler.unary_unary

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        token = TENANT.set(tenant)
        request_log.set_tenant(tenant)  # for the call's one log line, written after this returns
        try:
            return behaviour(request, context)
        finally:
            TENANT.reset(token)

    return handler._replace(unary_unary=run)


class AuthInterceptor(grpc.ServerInterceptor):
    """UNAUTHENTICATED without a valid key, PERMISSION_DENIED without the method's permission."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = keys

    def _find(self, presented: str) -> ApiKey | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self._keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found

    def presented_key(self, details: grpc.HandlerCallDetails) -> ApiKey | None:
        """The configured key the call presents as ``authorization: Bearer <key>``, if any."""
        metadata = dict(details.invocation_metadata or ())
        header = metadata.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        return self._find(presented.strip()) if scheme.lower() == "bearer" and presented else None

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        needed = permission_for(details.method)
        handler = continuation(details)
        if not self._keys or needed is None or handler is None:
            return handler  # authentication off, or an open method
        streaming = handler.stream_stream is not None
        if handler.unary_unary is None and not streaming:
            return handler  # no other kind of method is served
        key = self.presented_key(details)
        if key is None:
            return _abort_handler(
                grpc.StatusCode.UNAUTHENTICATED, "a valid API key is required (authorization: Bearer)", streaming
            )
        if needed not in key.permissions:
            return _abort_handler(
                grpc.StatusCode.PERMISSION_DENIED, f"this API key lacks the {needed!r} permission", streaming
            )
        return _with_tenant(handler, key.tenant)
