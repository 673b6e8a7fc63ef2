"""A real server with its HTTP port on a free loopback port, and a plain HTTP client for it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.grpc.server import RunningServer
from tests.helpers.servers import serving

SERVICE = "routerisk.v1.RouteRiskService"


@dataclass
class Answer:
    """An HTTP answer: its status, its JSON body, and the Connect error's parts when it is one."""

    status: int
    body: Any
    headers: httpx.Headers

    @property
    def code(self) -> str:
        return self.body.get("code", "") if isinstance(self.body, dict) and self.status != 200 else "ok"

    def violations(self) -> list[error_details_pb2.BadRequest.FieldViolation]:
        found = []
        for detail in self.body.get("details", []):
            if detail["type"] == "google.rpc.BadRequest":
                raw = detail["value"] + "=" * (-len(detail["value"]) % 4)
                found.extend(error_details_pb2.BadRequest.FromString(base64.b64decode(raw)).field_violations)
        return found

    def message(self, kind: type[Message]) -> Message:
        assert self.status == 200, self.body
        return json_format.ParseDict(self.body, kind())


class Connect:
    """Connect unary calls with JSON, as curl or a browser's fetch makes them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.client = httpx.Client(base_url=base, timeout=60)

    def post(self, path: str, content: bytes | str, headers: dict[str, str] | None = None) -> Answer:
        sent = {"content-type": "application/json", **(headers or {})}
        response = self.client.post(path, content=content, headers=sent)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body, response.headers)

    def call(
        self, method: str, request: Message | dict, headers: dict[str, str] | None = None, service: str = SERVICE
    ) -> Answer:
        body = request if isinstance(request, dict) else json_format.MessageToDict(request)
        return self.post(f"/{service}/{method}", json.dumps(body), headers)


@pytest.fixture(scope="module")
def http_server() -> Iterator[RunningServer]:
    running = serving(http_address="127.0.0.1:0", log_format="json")
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def connect(http_server: RunningServer) -> Iterator[Connect]:
    assert http_server.http is not None
    client = Connect(f"http://127.0.0.1:{http_server.http.port}")
    yield client
    client.client.close()


@pytest.fixture(scope="module")
def grpc_stub(http_server: RunningServer) -> Iterator[pb_grpc.RouteRiskServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{http_server.port}") as channel:
        yield pb_grpc.RouteRiskServiceStub(channel)
