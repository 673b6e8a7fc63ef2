"""What a hostile or confused HTTP client gets: a Connect error with the right status, never
``internal``: non-JSON, wrong content types, unknown fields (named), oversized bodies (413 before
they are read whole), bodies that trickle (timed out), methods that do not exist (404)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from service.grpc.server import RunningServer
from tests.helpers.servers import serving

SCORE = "/routerisk.v1.RouteRiskService/ScoreRoute"
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small_server() -> Iterator[RunningServer]:
    """Body limit 64 KiB, body timeout 0.5 s."""
    running = serving(http_address="127.0.0.1:0", http_max_body_bytes=LIMIT, http_body_timeout_seconds=0.5)
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def base(small_server: RunningServer) -> str:
    assert small_server.http is not None
    return f"http://127.0.0.1:{small_server.http.port}"


def post(base: str, path: str, content: bytes | str, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(base + path, content=content, headers={"content-type": content_type}, timeout=30)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"\xff\xfe\x00", b"[1, 2]", b"", b"{", b'"a string"', b"{" * 10_000 + b"}" * 10_000, b"null"],
)
def test_a_body_that_is_not_a_json_object_is_invalid_argument(base, content):
    response = post(base, SCORE, content)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_argument"


def test_an_unknown_field_is_refused_naming_it(base):
    body = {"route": {"line": {"points": [{"latitude": 20.4, "longitude": -100.2, "altitude": 3}]}}}
    response = post(base, SCORE, json.dumps(body))
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid_argument"
    assert "altitude" in error["message"]
    assert [d["type"] for d in error["details"]] == ["google.rpc.BadRequest"]


def test_a_wrongly_typed_field_names_its_path(base):
    body = {"route": {"line": {"points": [{"latitude": "north", "longitude": -100.2}]}}}
    error = post(base, SCORE, json.dumps(body)).json()
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith("route.line.points[0].latitude: ")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "multipart/form-data", "", "application/jsonx"]
)
def test_a_content_type_no_codec_reads_is_415_with_a_connect_error(base, content_type):
    response = post(base, SCORE, b"{}", content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "invalid_argument"


def test_grpc_without_http2_trailers_is_refused_not_crashed(base):
    response = post(base, SCORE, b"\x00\x00\x00\x00\x00", "application/grpc")
    assert response.status_code == 415
    assert response.json()["code"] == "unimplemented"


@pytest.mark.parametrize(
    "path",
    ["/routerisk.v1.RouteRiskService/Nope", "/routerisk.v1.Other/ScoreRoute", "/x", "/routerisk.v1.RouteRiskService/"],
)
def test_a_method_that_does_not_exist_is_404_with_a_connect_error(base, path):
    response = post(base, path, b"{}")
    assert response.status_code == 404
    assert response.json()["code"] == "unimplemented"


def test_a_body_announced_over_the_limit_is_413_before_it_is_sent(small_server):
    """The server answers on the headers alone: the body is never sent here, yet the answer comes."""
    answer = _announce(small_server, LIMIT * 100, b"")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b'"resource_exhausted"' in answer


def test_a_chunked_body_growing_past_the_limit_is_413(base):
    def chunks() -> Iterator[bytes]:
        yield b'{"reference": "'
        for _ in range(LIMIT // 1024 + 8):
            yield b"a" * 1024
        yield b'"}'

    response = httpx.post(base + SCORE, content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413
    assert response.json()["code"] == "resource_exhausted"


def test_a_body_that_never_arrives_is_timed_out(small_server):
    """Headers, then silence: the server gives up on the body and says so (its body timeout is 0.5 s)."""
    answer = _announce(small_server, 100, b"{")
    assert b'"deadline_exceeded"' in answer, answer[:300]


def test_the_server_still_answers_after_the_hostile_bodies(base):
    body = {"route": {"encodedPolyline": "_p~iF~ps|U_ulLnnqC_mqNvxq`@"}, "departureTime": "2025-03-12T04:00:00Z"}
    response = post(base, SCORE, json.dumps(body))
    assert response.status_code == 200, response.text
    assert httpx.get(base + "/healthz", timeout=30).json() == {"status": "SERVING"}


def _announce(server: RunningServer, length: int, start: bytes) -> bytes:
    """Send ScoreRoute's headers announcing ``length`` bytes of body and only ``start`` of it; the answer."""
    assert server.http is not None
    with socket.create_connection(("127.0.0.1", server.http.port), timeout=30) as sock:
        head = f"POST {SCORE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        sock.sendall(head.encode() + start)
        return _read_response(sock)


def _read_response(sock: socket.socket) -> bytes:
    """Read until the server closes or a whole Content-Length body is in."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:") and len(body) >= int(line.split(b":")[1]):
                return data
