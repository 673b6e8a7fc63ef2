"""The server's fused interceptor answers, logs and counts every call exactly as the chain of
four it replaces (metrics → request log → authentication → limits), call for call."""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Any

import grpc
import pytest

from service.grpc import metrics
from service.grpc.auth import TENANT, AuthInterceptor, hash_key, load_keys
from service.grpc.interceptor import CallInterceptor
from service.grpc.limits import LimitsInterceptor, check_deadline
from service.grpc.metrics import MetricsInterceptor
from service.grpc.request_log import LoggingInterceptor, RequestContextFilter

SCORER, READER = "rr_scorer-key", "rr_reader-key"
KEYS = (
    f'[{{"sha256": "{hash_key(SCORER)}", "tenant": "acme", "permissions": ["score", "read"]}},'
    f' {{"sha256": "{hash_key(READER)}", "tenant": "bravo", "permissions": ["read"]}}]'
)
SERVICE = "routerisk.v1.RouteRiskService"


def _score(request: bytes, context: grpc.ServicerContext) -> bytes:
    check_deadline()
    logging.getLogger("tests.inside").info("inside call")
    if request == b"boom":
        raise RuntimeError("boom")
    if request == b"missing":
        context.abort(grpc.StatusCode.NOT_FOUND, "nothing here")
    return b"scored:" + request + b":" + TENANT.get().encode()


def _serve(fused: bool) -> tuple[grpc.Server, int]:
    auth = AuthInterceptor(load_keys(KEYS, "test"))
    limits = LimitsInterceptor(4, 0.01, 3.0, 5.0)  # 3 calls per tenant, then none for minutes
    chain: list[grpc.ServerInterceptor] = (
        [CallInterceptor(auth, limits)]
        if fused
        else [MetricsInterceptor(), LoggingInterceptor(tenant_var=TENANT), auth, limits]
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=chain)
    handlers = {
        "ScoreRoute": grpc.unary_unary_rpc_method_handler(_score),
        "GetCellRisk": grpc.unary_unary_rpc_method_handler(_score),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


CALLS = [
    ("ScoreRoute", b"a", None, None),
    ("ScoreRoute", b"a", SCORER, None),
    ("ScoreRoute", b"b", READER, None),
    ("GetCellRisk", b"c", READER, "given-id.1"),
    ("ScoreRoute", b"d", "rr_wrong", None),
    ("ScoreRoute", b"boom", SCORER, "x"),
    ("ScoreRoute", b"missing", SCORER, "bad id with spaces"),
    ("Unknown", b"e", SCORER, None),
] + [("ScoreRoute", b"burst", SCORER, None)] * 2  # acme's 3 tokens went to calls 2, 6 and 7


def _counts() -> dict[tuple[str, str], float]:
    return {
        (s.labels["method"], s.labels["code"]): s.value
        for family in metrics.RPCS.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


def _run(fused: bool, caplog: pytest.LogCaptureFixture) -> tuple[list[Any], list[dict], dict]:
    server, port = _serve(fused)
    before = _counts()
    caplog.clear()
    outcomes = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for method, body, key, request_id in CALLS:
                metadata = [("authorization", f"Bearer {key}")] if key else []
                if request_id:
                    metadata.append(("x-request-id", request_id))
                call = channel.unary_unary(f"/{SERVICE}/{method}")
                try:
                    reply, state = call.with_call(body, metadata=metadata, timeout=10)
                    code, details = grpc.StatusCode.OK, reply
                    trailing = dict(state.trailing_metadata() or ())
                except grpc.RpcError as exc:
                    code, details = exc.code(), exc.details()
                    trailing = dict(exc.trailing_metadata() or ())
                echoed = trailing.get("x-request-id")
                if echoed is None:
                    kept = "none"
                elif echoed == request_id:
                    kept = "theirs"
                else:
                    kept = "new" if len(echoed) == 32 and int(echoed, 16) >= 0 else echoed
                outcomes.append((method, body, code, details, kept))
    finally:
        server.stop(0).wait()
    records = [
        {k: getattr(r, k, None) for k in ("name", "msg", "service", "method", "code", "tenant")}
        | {"has_id": bool(getattr(r, "request_id", None)), "timed": isinstance(getattr(r, "duration_ms", None), float)}
        for r in caplog.records
        if r.name in ("service.grpc.request_log", "tests.inside")
    ]
    after = _counts()
    delta = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    return outcomes, records, delta


def test_fused_interceptor_behaves_as_the_chain(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestContextFilter())
    chain = _run(False, caplog)
    fused = _run(True, caplog)
    assert fused == chain
    outcomes, records, delta = fused
    codes = [code for _, _, code, _, _ in outcomes]
    assert codes[:8] == [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.OK,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
    ]
    assert codes[8:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    assert outcomes[1][3] == b"scored:a:acme" and outcomes[3][3] == b"scored:c:bravo"
    kept = [k for *_, k in outcomes]
    assert kept == ["new", "new", "new", "theirs", "new", "theirs", "new", "none", "new", "new"]
    lines = [r for r in records if r["msg"] == "rpc"]
    assert len(lines) == len(CALLS) - 1  # the unknown method has no handler: no line, no series
    assert all(r["has_id"] and r["timed"] and r["service"] == SERVICE for r in lines)
    assert [r["tenant"] for r in lines[:4]] == ["-", "acme", "-", "bravo"]
    inside = [r for r in records if r["msg"] == "inside call"]
    assert [r["tenant"] for r in inside] == ["acme", "bravo", "acme", "acme"]
    assert all(r["has_id"] for r in inside)
    assert delta[("ScoreRoute", "UNAUTHENTICATED")] == 2 and delta[("GetCellRisk", "OK")] == 1
    assert not any(method == "Unknown" for method, _ in delta)
