"""Redis for the tests: the shared instance (unique key prefixes) and private ``redis-server``s.

Import the fixtures into a test module with
``from tests.redis_fixtures import redis_url, prefix, own_redis  # noqa: F401``.

- ``redis_url``: ``ROUTERISK_TEST_REDIS_URL``, else ``redis://127.0.0.1:6379/0`` when it answers,
  else a ``redis-server`` started for the session; none of them: skip (fail with
  ``ROUTERISK_REQUIRE_REDIS=1``).
- ``prefix``: a unique ``routerisk-test:<uuid>:``; only its keys are deleted afterwards.
- ``own_redis``: a private ``redis-server`` a test may stop, pause, fill or turn into a replica.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

LOCAL_URL = "redis://127.0.0.1:6379/0"


def _unavailable(reason: str) -> None:
    if os.environ.get("ROUTERISK_REQUIRE_REDIS") == "1":
        pytest.fail(f"Redis is required (ROUTERISK_REQUIRE_REDIS=1): {reason}")
    pytest.skip(reason)


def _answers(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.exceptions.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A ``redis-server`` of this test run on its own port (no persistence), in its own directory."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.url = f"redis://{self.host}:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self._clients: list[redis.Redis] = []

    def start(self, timeout: float = 10.0) -> None:
        """Start (again) on the same port; returns once it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        command = [
            self.executable,
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        deadline = time.monotonic() + timeout
        while True:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while time.monotonic() < deadline and self.process.poll() is None:
                if _answers(self.url, 0.2):
                    return
                time.sleep(0.02)
            if self.process.poll() is None or time.monotonic() >= deadline:
                break
            time.sleep(0.1)  # exited at once, e.g. the port is still being released: retry
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Kill the server (like a crash: nothing is saved)."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        """A client of this server for the test's own commands (one, reused until stop())."""
        if not self._clients:
            self._clients.append(redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5))
        return self._clients[0]

    def pause(self, ms: int) -> None:
        """CLIENT PAUSE: every client's commands block for ``ms`` milliseconds."""
        client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        try:
            client.execute_command("CLIENT", "PAUSE", int(ms), "ALL")
        finally:
            client.close()

    def set_maxmemory(self, limit_bytes: int, policy: str = "noeviction") -> None:
        client = self.client()
        client.config_set("maxmemory-policy", policy)
        client.config_set("maxmemory", int(limit_bytes))

    def make_replica_of(self, other: PrivateRedis, timeout: float = 10.0) -> None:
        """REPLICAOF ``other`` with replica-read-only; returns once the link is up."""
        other.client().config_set("repl-diskless-sync-delay", 0)  # the default waits 5 s for more replicas
        client = self.client()
        client.config_set("replica-read-only", "yes")
        client.execute_command("REPLICAOF", other.host, other.port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.info("replication").get("master_link_status") == "up":
                return
            time.sleep(0.05)
        raise RuntimeError(f"replica on port {self.port} did not connect to port {other.port}")


def _redis_server_executable() -> str | None:
    return shutil.which("redis-server")


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A started private ``redis-server``, killed on exit (skip/fail when there is none)."""
    executable = _redis_server_executable()
    if executable is None:
        _unavailable("redis-server is not on PATH")
    with tempfile.TemporaryDirectory(prefix="routerisk-redis-") as workdir:
        server = PrivateRedis(executable, Path(workdir))
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis every test shares (tests keep to their own key prefix)."""
    configured = os.environ.get("ROUTERISK_TEST_REDIS_URL")
    if configured:
        if not _answers(configured, 2.0):
            _unavailable(f"ROUTERISK_TEST_REDIS_URL={configured} does not answer PING")
        yield configured
        return
    if _answers(LOCAL_URL):
        yield LOCAL_URL
        return
    if _redis_server_executable() is None:
        _unavailable(f"no Redis at {LOCAL_URL} and no redis-server on PATH")
    with private_redis() as server:
        yield server.url


@pytest.fixture()
def prefix(redis_url: str) -> Iterator[str]:
    """A unique key prefix; its keys (and only those) are deleted at teardown."""
    value = f"routerisk-test:{uuid.uuid4()}:"
    yield value
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = list(client.scan_iter(match=value + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture()
def own_redis() -> Iterator[PrivateRedis]:
    """A private ``redis-server`` for destructive tests; killed at teardown."""
    with private_redis() as server:
        yield server
