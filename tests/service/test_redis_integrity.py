"""Redis entries are verified (issue 15): a garbage or forged ``score:*`` entry is a miss, counted
and overwritten, and the caller gets the right answer; shared border observations of the wrong
type are skipped one by one; a bad layer named by the shared ``layers:active`` key is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict

import grpc
import pytest
import redis
from prometheus_client import REGISTRY

import seeds
from geodata.border import WaitObservation, load_border_data
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import RunningServer, load_data, start_server
from service.store.redis_client import EntrySigner, RedisCache
from service.store.replicas import SharedState
from tests.redis_fixtures import prefix, redis_url  # noqa: F401
from tests.service.test_api import QUERETARO, line_request

HMAC_KEY = "test-cache-key-0123456789abcdef"


def counted(name: str, reason: str) -> float:
    return REGISTRY.get_sample_value(name, {"reason": reason}) or 0.0


def eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture(params=["hmac", "checksum"])
def served(request, redis_url, prefix) -> Iterator[tuple[RunningServer, pb_grpc.RouteRiskServiceStub, str | None]]:  # noqa: F811
    key = HMAC_KEY if request.param == "hmac" else None
    # no local tier: every answer goes through Redis
    settings = Settings(
        address="127.0.0.1:0", redis_url=redis_url, redis_prefix=prefix, cache_max_entries=0, cache_hmac_key=key
    )
    running = start_server(settings)
    load_data(running, settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, pb_grpc.RouteRiskServiceStub(channel), key
    running.stop(0)


def score_key(client: redis.Redis, prefix: str) -> str:  # noqa: F811
    [key] = [k.decode() for k in client.scan_iter(match=prefix + "score:*", count=1000)]
    return key


def test_a_garbage_entry_is_a_miss_counted_and_overwritten(served, redis_url, prefix):  # noqa: F811
    _, stub, _ = served
    client = redis.Redis.from_url(redis_url)
    first = stub.ScoreRoute(line_request(QUERETARO), timeout=10)
    key = score_key(client, prefix)
    assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).cached
    before = counted("routerisk_cache_rejected_total", "format")
    client.set(key, b"\x00\xffnot a response at all", px=60_000)
    again = stub.ScoreRoute(line_request(QUERETARO), timeout=10)
    assert not again.cached and again.score == first.score and again.level == first.level
    assert counted("routerisk_cache_rejected_total", "format") > before  # each read of it counts
    entry = client.get(key)
    assert entry is not None and entry.startswith(b"RR1") and b"not a response" not in entry  # overwritten
    assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).cached  # and served from it again


def test_a_forged_entry_is_not_served(served, redis_url, prefix):  # noqa: F811
    _, stub, key_text = served
    client = redis.Redis.from_url(redis_url)
    first = stub.ScoreRoute(line_request(QUERETARO), timeout=10)
    key = score_key(client, prefix)
    forged = pb.ScoreRouteResponse()
    forged.CopyFrom(first)
    forged.score = 1.0
    forged.level = pb.RISK_LEVEL_LOW
    forged.cached = False
    # what a writer without the key can do: a checksum seal (the server has a key), or a seal made
    # with another key (the server has none, or this one)
    forger = EntrySigner(b"not the server's key") if key_text is None else EntrySigner(None)
    entries = [forged.SerializeToString(), forger.seal(key, forged.SerializeToString())]
    if key_text is not None:
        entries.append(EntrySigner(b"another key").seal(key, forged.SerializeToString()))
    for entry in entries:
        before = counted("routerisk_cache_rejected_total", "format") + counted("routerisk_cache_rejected_total", "tag")
        client.set(key, entry, px=60_000)
        answer = stub.ScoreRoute(line_request(QUERETARO), timeout=10)
        assert answer.score == first.score and answer.level == first.level and not answer.cached
        after = counted("routerisk_cache_rejected_total", "format") + counted("routerisk_cache_rejected_total", "tag")
        assert after > before
        assert client.get(key) != entry  # overwritten with the real answer
    # an entry copied from another key does not verify either (the seal covers the key)
    genuine = client.get(key)
    assert genuine is not None
    other = key + "-copy"
    signer = EntrySigner(key_text.encode() if key_text else None)
    assert signer.open(key, genuine)[0] is not None and signer.open(other, genuine)[0] is None


def observation(port: str, wait: object, observed_at_s: object) -> bytes:
    data = asdict(WaitObservation(port_number=port, lane="commercial_standard", wait_minutes=1.0, observed_at_s=0))
    data.update(wait_minutes=wait, observed_at_s=observed_at_s)
    return json.dumps(data).encode()


def test_shared_observations_of_the_wrong_type_are_skipped_one_by_one(redis_url, prefix):  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    signer = EntrySigner(b"a key of at least sixteen")
    shared = SharedState(RedisCache(client, prefix, signer=signer))
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    ports = [p.port_number for p in border.ports[:8]]
    now = int(time.time())
    entries = {
        f"{ports[0]}|good": observation(ports[0], 35.0, now - 60),
        f"{ports[1]}|text": observation(ports[1], "35", now - 60),
        f"{ports[2]}|time": observation(ports[2], 20.0, "yesterday"),
        f"{ports[3]}|bool": observation(ports[3], True, now - 60),
        f"{ports[4]}|list": b"[1, 2, 3]",
        f"{ports[5]}|junk": b"\xff\xfe{",
    }
    obs_key = prefix + "border:obs-v2"
    sealed = {field: signer.seal(f"{obs_key}|{field}", value) for field, value in entries.items()}
    # a well-formed reading written without the seal, and one sealed by a writer without the key
    sealed[f"{ports[6]}|plain"] = observation(ports[6], 5.0, now - 60)
    sealed[f"{ports[7]}|forged"] = EntrySigner().seal(
        f"{obs_key}|{ports[7]}|forged", observation(ports[7], 5.0, now - 60)
    )
    client.hset(obs_key, mapping=sealed)
    client.set(prefix + "border:rev-v2", b"r1")
    skipped = {r: counted("routerisk_shared_observations_skipped_total", r) for r in ("type", "unreadable", "seal")}
    update = shared.observations_since(None)
    assert update is not None
    revision, observations = update
    assert revision == "r1"
    assert [(o.port_number, o.wait_minutes) for o in observations] == [(ports[0], 35.0)]
    assert counted("routerisk_shared_observations_skipped_total", "type") == skipped["type"] + 4
    assert counted("routerisk_shared_observations_skipped_total", "unreadable") == skipped["unreadable"] + 1
    assert counted("routerisk_shared_observations_skipped_total", "seal") == skipped["seal"] + 2


def test_published_observations_are_sealed_and_read_back(redis_url, prefix):  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    shared = SharedState(RedisCache(client, prefix))
    now = int(time.time())
    reading = WaitObservation(port_number="230502", lane="commercial_standard", wait_minutes=42.0, observed_at_s=now)
    assert shared.publish_observations([reading])
    raw = client.hget(prefix + "border:obs-v2", "230502|commercial_standard")
    assert raw is not None and raw.startswith(EntrySigner.MAGIC)  # not plain JSON in Redis
    update = shared.observations_since(None)
    assert update is not None and update[1] == [reading]


def test_a_bad_layer_named_by_the_shared_key_is_refused(redis_url, prefix, tmp_path):  # noqa: F811
    from geodata.ingest import read_point_incidents
    from geodata.layer_store import LayerStore
    from geodata.layers import build_layer
    from tests.service.test_layer_checks import nan_layer  # one definition of a bad layer

    incidents = read_point_incidents(seeds.INCIDENTS_CSV)
    good = build_layer(incidents.select(incidents.utc_s < 1_735_689_600), name="good")
    store = LayerStore(tmp_path / "store")
    store.write(good)
    store.activate(good.version)
    bad = nan_layer(good)
    store.write(bad)
    client = redis.Redis.from_url(redis_url)
    settings = Settings(
        address="127.0.0.1:0", redis_url=redis_url, redis_prefix=prefix, layer_dir=store.root, layer_poll_seconds=0.05
    )
    running = start_server(settings)
    try:
        load_data(running, settings)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).layer_version == good.version
            before = counted("routerisk_layer_rejected_total", "values")
            client.set(prefix + "layers:active", bad.version)
            eventually(lambda: counted("routerisk_layer_rejected_total", "values") > before, "refused")
            answer = stub.ScoreRoute(line_request([(19.45, -99.15), (20.59, -100.39)]), timeout=10)
            assert answer.layer_version == good.version
            missing = counted("routerisk_layer_rejected_total", "not_found")
            client.set(prefix + "layers:active", b"\xff\xfe/../../etc")  # not even a name
            eventually(lambda: counted("routerisk_layer_rejected_total", "not_found") > missing, "refused")
            assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).layer_version == good.version
    finally:
        running.stop(0)


@pytest.mark.parametrize("key", ["", "short"])
def test_a_set_but_short_hmac_key_is_refused_at_start(key: str) -> None:
    """An empty ROUTERISK_CACHE_HMAC_KEY would otherwise seal with a plain checksum without a word."""
    from pydantic import ValidationError

    from service.config import Settings

    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(cache_hmac_key=key)
