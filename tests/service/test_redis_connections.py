"""Connection options against real Redis processes: an ACL user with a password, and Sentinel."""

# ruff: noqa: F811
from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest
import redis

from service.store.redis_client import RedisCache, connect
from tests.redis_fixtures import _free_port, own_redis  # noqa: F401


def round_trip(cache: RedisCache) -> bytes | None:
    key = f"check:{uuid.uuid4().hex}"
    cache.set(key, b"value", 60)
    return cache.get(key)


def test_acl_user_and_password_in_the_url(own_redis):
    own_redis.client().execute_command("ACL", "SETUSER", "routerisk", "on", ">s3cret", "~rr:*", "+@all")
    host, port = "127.0.0.1", own_redis.port
    good = RedisCache(connect(f"redis://routerisk:s3cret@{host}:{port}/0", timeout_s=1.0), "rr:")
    assert round_trip(good) == b"value"
    # a wrong password fails open: no value, no exception, the breaker counts the failures
    bad = RedisCache(connect(f"redis://routerisk:wrong@{host}:{port}/0", timeout_s=1.0), "rr:")
    assert round_trip(bad) is None
    # the ACL confines the user to its prefix: writes elsewhere are refused, and fail open too
    outside = RedisCache(connect(f"redis://routerisk:s3cret@{host}:{port}/0", timeout_s=1.0), "other:")
    assert round_trip(outside) is None


def test_sentinel_finds_the_master(own_redis, tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not on PATH")
    port = _free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor routerisk-primary 127.0.0.1 {own_redis.port} 1\n"
    )
    sentinel = subprocess.Popen(
        [server, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        probe = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                if probe.execute_command("SENTINEL", "get-master-addr-by-name", "routerisk-primary"):
                    break
            except redis.exceptions.RedisError:
                pass
            assert time.monotonic() < deadline, "sentinel did not start"
            time.sleep(0.1)
        client = connect("redis://", timeout_s=1.0, sentinels=f"127.0.0.1:{port}", sentinel_master="routerisk-primary")
        assert round_trip(RedisCache(client, f"sentinel-test:{uuid.uuid4().hex}:")) == b"value"
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
