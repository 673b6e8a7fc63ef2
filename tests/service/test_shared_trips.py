# ruff: noqa: F811  (the fixtures imported from tests.redis_fixtures are redefined as test parameters)
"""MonitorTrip state shared through Redis, in-process: two replicas' trip stores on one Redis,
concurrent writers of one trip (the revision check), Redis unusable (per replica, logged once)
and an unreadable entry. Two real server processes: tests/test_replicas.py."""

from __future__ import annotations

import logging

import pytest
import redis

import seeds
from geodata.border import load_border_data
from service.store.redis_client import EntrySigner, RedisCache, connect
from service.store.serving import build_seed_layer
from service.store.trips import RedisTrips
from service.usecases.trip_monitor import Acknowledgement, Environment, TripSession, TripStore
from tests.helpers.trip_track import Track, build_track
from tests.redis_fixtures import _free_port, prefix, redis_url  # noqa: F401


@pytest.fixture(scope="module")
def track() -> Track:
    return build_track()


@pytest.fixture(scope="module")
def env() -> Environment:
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    return Environment(build_seed_layer(), border)


def shared_trips(url: str, key_prefix: str, hmac_key: bytes | None = None) -> RedisTrips:
    return RedisTrips(RedisCache(connect(url, timeout_s=1.0), key_prefix, signer=EntrySigner(hmac_key)), ttl_s=600)


def feed(session: TripSession, track: Track, env: Environment, start: int, stop: int) -> list[Acknowledgement]:
    return [
        session.feed(p, env, track.route if i == 0 else None)
        for i, p in enumerate(track.positions[start:stop], start=start)
    ]


def kinds(acks: list[Acknowledgement]) -> list[tuple[str, float]]:
    return [(a.kind, a.time_s) for ack in acks for a in ack.alerts]


def test_two_replicas_and_a_late_writer_share_one_trip_without_repeating_alerts(redis_url, prefix, track, env):
    stop = track.stop_index + 30
    reference = kinds(feed(TripSession(TripStore(), "ref"), track, env, 0, stop))
    a, b = TripStore(shared=shared_trips(redis_url, prefix)), TripStore(shared=shared_trips(redis_url, prefix))
    cut = track.stop_index + 5
    on_a = TripSession(a, "t/1")  # the stream on replica A, left open (a tracker that lost its link)
    first = feed(on_a, track, env, 0, cut)
    on_b = TripSession(b, "t/1")  # the tracker reconnects, to replica B
    second = feed(on_b, track, env, cut, cut + 10)
    assert second[0].resumed and second[0].processed == cut + 1
    # A's stream wakes up and sends what B has already processed: A's write meets B's newer revision,
    # takes B's state, and the position is a duplicate
    late = on_a.feed(track.positions[cut + 3], env)
    assert late.duplicate and not late.alerts and late.processed == cut + 10
    # and then one B has not seen: A continues from B's state (counts continue, no alert repeated)
    third = feed(on_a, track, env, cut + 10, cut + 20)
    assert [ack.processed for ack in third] == list(range(cut + 11, cut + 21))
    # B's stream, behind now, sends its next position: already done by A
    again = on_b.feed(track.positions[cut + 15], env)
    assert again.duplicate and again.processed == cut + 20
    fourth = feed(on_b, track, env, cut + 20, stop)
    assert fourth[-1].processed == stop
    assert kinds(first + second + third + fourth) == reference


def test_redis_unusable_trips_go_on_per_replica_logged_once(track, env, caplog):
    dead = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    store = TripStore(shared=RedisTrips(RedisCache(connect(dead, timeout_s=0.05), "x:"), ttl_s=600))
    reference = kinds(feed(TripSession(TripStore(), "ref"), track, env, 0, 40))
    with caplog.at_level(logging.INFO, logger="service.store.trips"):
        first = feed(TripSession(store, "t/1"), track, env, 0, 20)
        resumed = TripSession(store, "t/1")  # same replica: its own copy resumes
        second = feed(resumed, track, env, 18, 40)
    assert second[0].resumed and [a.duplicate for a in second[:3]] == [True, True, False]
    assert kinds(first + second) == reference
    lines = [r for r in caplog.records if r.name == "service.store.trips"]
    assert [r.getMessage() for r in lines] == ["trip state not shared: redis unusable; open trips go on per replica"]


def test_an_unreadable_shared_trip_is_no_trip(redis_url, prefix, track, env):
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{prefix}trip-v2:t/9", mapping={"rev": "4", "state": b"\xff not json"})
    client.close()
    session = TripSession(TripStore(shared=shared_trips(redis_url, prefix)), "t/9")
    acks = feed(session, track, env, 0, 3)
    assert not acks[0].resumed and [a.processed for a in acks] == [1, 2, 3]


def test_a_shared_trip_not_sealed_with_the_key_is_no_trip(redis_url, prefix, track, env):
    """A writer without ``ROUTERISK_CACHE_HMAC_KEY`` cannot plant a trip's state: the same record
    re-sealed without the key (a checksum anyone can compute) is skipped, so the trip starts over
    on that replica instead of taking the planted alert state."""
    key = b"sixteen bytes or more"
    first = feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix, key)), "t/5"), track, env, 0, 10)
    assert [a.processed for a in first] == list(range(1, 11))
    client = redis.Redis.from_url(redis_url)
    name = f"{prefix}trip-v2:t/5"
    sealed_as = f"{name}|state|{int(client.hget(name, 'rev'))}"
    state, _ = EntrySigner(key).open(sealed_as, client.hget(name, "state"))
    assert state is not None  # what the replica wrote verifies with its key
    client.hset(name, "state", EntrySigner().seal(sealed_as, state))  # same record, no key
    client.close()
    honest = TripSession(TripStore(shared=shared_trips(redis_url, prefix, key)), "t/5")
    acks = feed(honest, track, env, 10, 12)
    assert not acks[0].resumed and [a.processed for a in acks] == [1, 2]
    # with the seal intact the trip resumes and its counts continue
    feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix, key)), "t/6"), track, env, 0, 10)
    resumed = feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix, key)), "t/6"), track, env, 10, 12)
    assert resumed[0].resumed and [a.processed for a in resumed] == [11, 12]


class _Contended(RedisTrips):
    """A replica whose every write is beaten by another writer of the same trip: just before it
    saves, a second replica (real Redis, real revision check) writes the trip's state again."""

    def __init__(self, redis_cache: RedisCache, rival: RedisTrips) -> None:
        super().__init__(redis_cache, ttl_s=600)
        self.rival = rival
        self.saves = 0

    def save(self, key, record, revision):  # type: ignore[no-untyped-def]
        held = self.rival.load(key)
        assert held is not None
        rival_revision, rival_record = held
        assert self.rival.save(key, rival_record or record, rival_revision) == "saved"
        self.saves += 1
        return super().save(key, record, revision)


def test_a_position_that_loses_every_write_is_refused_not_answered(redis_url, prefix, track, env):
    """After ``MAX_ATTEMPTS`` lost writes the position is a ConflictError (gRPC ABORTED: send it
    again), not alerts computed on a state nobody recorded; the trip's state stays the shared one."""
    from service.usecases.errors import ConflictError

    feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix)), "t/7"), track, env, 0, 5)
    contended = _Contended(RedisCache(connect(redis_url, timeout_s=1.0), prefix), shared_trips(redis_url, prefix))
    session = TripSession(TripStore(shared=contended), "t/7")
    with pytest.raises(ConflictError, match="send it again"):
        session.feed(track.positions[5], env)
    assert contended.saves == TripSession.MAX_ATTEMPTS
    # nothing of position 5 was recorded: a fresh session resumes at 5 processed and takes it
    after = feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix)), "t/7"), track, env, 5, 6)
    assert after[0].resumed and not after[0].duplicate and after[0].processed == 6


def test_an_older_state_of_the_same_trip_written_back_is_no_trip(redis_url, prefix, track, env):
    """The seal covers the revision: a state captured earlier (its later alerts not yet announced)
    and written back over the newer one does not verify, so no alert is sent a second time."""
    store = TripStore(shared=shared_trips(redis_url, prefix))
    session = TripSession(store, "t/8")
    feed(session, track, env, 0, 10)
    client = redis.Redis.from_url(redis_url)
    name = f"{prefix}trip-v2:t/8"
    old_state = client.hget(name, "state")
    feed(session, track, env, 10, 15)
    client.hset(name, "state", old_state)  # the bytes of revision 10, under revision 15
    client.close()
    replayed = feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix)), "t/8"), track, env, 15, 16)
    assert not replayed[0].resumed and replayed[0].processed == 1


def test_a_trip_with_a_garbage_revision_starts_over_and_is_written_again(redis_url, prefix, track, env):
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{prefix}trip-v2:t/10", mapping={"rev": "not a number", "state": b"x"})
    acks = feed(TripSession(TripStore(shared=shared_trips(redis_url, prefix)), "t/10"), track, env, 0, 3)
    assert [a.processed for a in acks] == [1, 2, 3]
    assert client.hget(f"{prefix}trip-v2:t/10", "rev") == b"3"  # the garbage revision was overwritten
    client.close()
