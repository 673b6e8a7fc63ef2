# ruff: noqa: F811  (the fixtures imported from tests.redis_fixtures are redefined as test parameters)
"""Two real ``routerisk serve`` processes sharing one Redis and one layer store: results,
layer activation and live border waits reach both replicas."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import h3
import pytest
import redis

import seeds
from geodata.layer_store import LayerStore
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.grpc.admin_convert import observation_to_proto
from tests.conftest import FIXTURES, free_port, routerisk_command, wait_serving
from tests.geodata.cbp_seeded import parse_feed
from tests.helpers.api import DEPARTURE, QUERETARO, line_request
from tests.helpers.border import FEED, NOON_CDT, via
from tests.helpers.servers import clean_env
from tests.redis_fixtures import redis_url  # noqa: F401

POINTS = FIXTURES / "ingest" / "points.csv"
SWITCH_TIMEOUT_S = 5.0
CELL = h3.latlng_to_cell(19.6, -99.2, 8)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*routerisk_command(), *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


@dataclass
class Replica:
    name: str
    address: str
    process: subprocess.Popen
    log: Path
    channel: grpc.Channel

    @property
    def stub(self) -> pb_grpc.RouteRiskServiceStub:
        return pb_grpc.RouteRiskServiceStub(self.channel)

    @property
    def admin(self) -> admin_grpc.RouteRiskAdminServiceStub:
        return admin_grpc.RouteRiskAdminServiceStub(self.channel)

    def layer_version(self) -> str:
        return self.stub.GetCellRisk(pb.GetCellRiskRequest(cell=CELL), timeout=5).layer_version

    def log_tail(self) -> str:
        return f"--- {self.name} log ---\n" + self.log.read_text(errors="replace")[-3000:]


@dataclass
class Cluster:
    store: Path
    v1: str
    v2: str
    prefix: str
    redis_url: str
    a: Replica
    b: Replica

    @property
    def replicas(self) -> tuple[Replica, Replica]:
        return self.a, self.b

    def env(self) -> dict[str, str]:
        return clean_env(ROUTERISK_REDIS_URL=self.redis_url, ROUTERISK_REDIS_PREFIX=self.prefix)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)

    def logs(self) -> str:
        return "\n".join(r.log_tail() for r in self.replicas)


def eventually(condition: Callable[[], bool], what: str, cluster: Cluster, timeout: float = SWITCH_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}\n{cluster.logs()}")


def build_layers(store: Path) -> tuple[str, str]:
    """Two versions built by the CLI in parallel; the first one activated."""
    env = clean_env()
    commands = [
        [*routerisk_command(), "layers", "build", str(seeds.INCIDENTS_CSV), "--out", str(store), "--name", "v1"],
        [*routerisk_command(), "layers", "build", str(POINTS), "--out", str(store), "--name", "v2"],
    ]
    builds = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    versions = []
    for build in builds:
        out, err = build.communicate(timeout=300)
        assert build.returncode == 0, err
        versions.append(out.strip().splitlines()[-1])
    v1, v2 = versions
    assert v1 != v2
    activated = run_cli("layers", "activate", v1, "--layer-dir", str(store), env=env)
    assert activated.returncode == 0, activated.stderr
    return v1, v2


@pytest.fixture(scope="module")
def running_cluster(redis_url, tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    store = root / "store"
    v1, v2 = build_layers(store)
    key_prefix = f"routerisk-test:{uuid.uuid4()}:"
    env = clean_env(
        ROUTERISK_REDIS_URL=redis_url,
        ROUTERISK_REDIS_PREFIX=key_prefix,
        ROUTERISK_LAYER_POLL_SECONDS="0.2",
        ROUTERISK_LOG_FORMAT="json",
    )
    started: list[tuple[str, str, subprocess.Popen, Path]] = []
    channels: list[grpc.Channel] = []
    try:
        for name in ("A", "B"):
            address = f"127.0.0.1:{free_port()}"
            log_path = root / f"{name}.log"
            with open(log_path, "wb") as log:
                command = [*routerisk_command(), "serve", "--address", address, "--layer-dir", str(store)]
                process = subprocess.Popen(command, stderr=log, env=env)
            started.append((name, address, process, log_path))
        replicas = []
        for name, address, process, log_path in started:
            wait_serving(address)
            channels.append(grpc.insecure_channel(address))
            replicas.append(Replica(name, address, process, log_path, channels[-1]))
        yield Cluster(store, v1, v2, key_prefix, redis_url, *replicas)
    finally:
        for channel in channels:
            channel.close()
        for _, _, process, _ in started:
            if process.poll() is None:
                process.terminate()
        for _, _, process, _ in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        keys = list(client.scan_iter(match=key_prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture()
def cluster(running_cluster: Cluster) -> Cluster:
    """The replicas, both serving V1 (shared key and ACTIVE file), whatever a test before switched to."""
    client = running_cluster.redis()
    client.set(running_cluster.prefix + "layers:active", running_cluster.v1)
    client.close()
    LayerStore(running_cluster.store).activate(running_cluster.v1)
    for replica in running_cluster.replicas:
        eventually(
            lambda r=replica: r.layer_version() == running_cluster.v1, f"{replica.name} serves V1", running_cluster
        )
    return running_cluster


def unique_request(days: int) -> pb.ScoreRouteRequest:
    """QUERETARO departing ``days`` after DEPARTURE: a cache key no other test of this module uses."""
    request = line_request(QUERETARO)
    request.departure_time.FromDatetime(DEPARTURE + timedelta(days=days))
    return request


def test_a_result_computed_by_one_replica_is_cached_for_the_other(cluster):
    request = unique_request(1)
    first = cluster.a.stub.ScoreRoute(request, timeout=30)
    other = cluster.b.stub.ScoreRoute(request, timeout=30)
    assert not first.cached
    assert other.cached
    assert other.layer_version == first.layer_version == cluster.v1
    other.cached = False
    assert other == first


def test_activation_reaches_both_replicas_through_redis(cluster):
    request = unique_request(2)
    assert [r.layer_version() for r in cluster.replicas] == [cluster.v1, cluster.v1]
    assert not cluster.a.stub.ScoreRoute(request, timeout=30).cached
    assert cluster.b.stub.ScoreRoute(request, timeout=30).cached

    # (b) routerisk layers activate V2, with the Redis settings: both switch
    activated = run_cli("layers", "activate", cluster.v2, "--layer-dir", str(cluster.store), env=cluster.env())
    assert activated.returncode == 0, activated.stderr
    assert "warning" not in activated.stderr
    client = cluster.redis()
    assert client.get(cluster.prefix + "layers:active") == cluster.v2.encode()
    for replica in cluster.replicas:
        eventually(lambda r=replica: r.layer_version() == cluster.v2, f"{replica.name} serves V2", cluster)
    after = [cluster.a.stub.ScoreRoute(request, timeout=30), cluster.b.stub.ScoreRoute(request, timeout=30)]
    assert [r.layer_version for r in after] == [cluster.v2, cluster.v2]
    assert [r.cached for r in after] == [False, True]  # computed anew once, for the new layer

    # (c) only the Redis key back to V1 (the ACTIVE file still names V2): both switch back
    client.set(cluster.prefix + "layers:active", cluster.v1)
    client.close()
    for replica in cluster.replicas:
        eventually(lambda r=replica: r.layer_version() == cluster.v1, f"{replica.name} serves V1 again", cluster)
    assert LayerStore(cluster.store).active_version() == cluster.v2
    again = [r.stub.ScoreRoute(request, timeout=30) for r in cluster.replicas]
    assert [r.layer_version for r in again] == [cluster.v1, cluster.v1]
    assert all(r.cached for r in again)  # the V1 result is still cached


def test_a_trip_resumed_on_the_other_replica_continues_without_repeated_alerts(cluster):
    """Half a replayed track on A, the link drops, the tracker reconnects (behind a Service: to B)
    with the same trip id and resends from a little before the cut: B continues A's trip."""
    from tests.helpers.monitor import _drop_after, alerts_of, requests
    from tests.helpers.trip_track import build_track

    track = build_track()
    reference = alerts_of(cluster.a.stub.MonitorTrip(requests(f"ref-{uuid.uuid4().hex}", track), timeout=120))
    assert len({a.kind for a in reference}) >= 3, "the track should raise several kinds of alert"
    trip = f"replica-{uuid.uuid4().hex}"
    cut = track.stop_index + 5  # mid-stop: the stop alert is still to come, on B
    before = _drop_after(trip, track, cut, cluster.a.stub)
    assert len(before) == cut
    acked = before[-1].acknowledged_time.ToNanoseconds()
    overlap = 3
    after = list(cluster.b.stub.MonitorTrip(requests(trip, track, cut - overlap), timeout=120))
    assert after[0].resumed and not any(r.resumed for r in after[1:])
    assert [r.duplicate for r in after[: overlap + 1]] == [True] * overlap + [False]
    assert all(r.acknowledged_time.ToNanoseconds() == acked for r in after[:overlap])
    assert [r.positions_processed for r in after[overlap : overlap + 2]] == [cut + 1, cut + 2]  # counts continue
    assert after[-1].positions_processed == len(track.positions)
    combined = alerts_of(before) + alerts_of(after)
    assert [(a.kind, a.time.seconds) for a in combined] == [(a.kind, a.time.seconds) for a in reference]

    # A's own copy stopped at the cut; a late stream there sees B's progress: duplicates, no alert
    late = list(cluster.a.stub.MonitorTrip(requests(trip, track, len(track.positions) - 2), timeout=60))
    assert [r.duplicate for r in late] == [True, True] and not alerts_of(late)
    assert late[-1].positions_processed == len(track.positions)

    client = cluster.redis()
    try:
        ttl_ms = client.pttl(f"{cluster.prefix}trip-v2:-/{trip}")
        assert 0 < ttl_ms <= 7200 * 1000  # the default trip TTL, refreshed by each write
        assert list(client.scan_iter(match=f"{cluster.prefix}trip-route-v2:*"))  # the planned route, by reference
    finally:
        client.close()


def laredo_standard(replica: Replica, at: datetime) -> pb.LaneWait:
    request = pb.ListBorderCrossingsRequest(port_number="230404")
    request.time.FromDatetime(at)
    crossing = replica.stub.ListBorderCrossings(request, timeout=10).crossings[0]
    return next(w for w in crossing.lane_waits if w.lane == pb.CROSSING_LANE_STANDARD)


def test_border_observations_loaded_on_one_replica_reach_the_other(cluster):
    at = datetime(2022, 6, 29, 17, 10, tzinfo=UTC)
    assert laredo_standard(cluster.b, at).source != pb.WAIT_SOURCE_LIVE
    observations, _ = parse_feed(FEED.read_bytes())
    request = admin_pb.LoadBorderObservationsRequest(observations=[observation_to_proto(o) for o in observations])
    reply = cluster.a.admin.LoadBorderObservations(request, timeout=10)
    assert reply.accepted > 20

    def live_on_b() -> bool:
        wait = laredo_standard(cluster.b, at)
        return wait.source == pb.WAIT_SOURCE_LIVE and wait.expected_wait_minutes == 45

    eventually(live_on_b, "B serves the live Laredo wait loaded on A", cluster)
    assert laredo_standard(cluster.b, at).observed_at.ToDatetime(tzinfo=UTC) == NOON_CDT
    # both hold the same border data, so a cross-border result is shared too
    versions = [r.stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10) for r in cluster.replicas]
    assert versions[0].border_data_version == versions[1].border_data_version == reply.border_data_version
    crossing = line_request(via("230404"))
    crossing.departure_time.FromDatetime(datetime(2022, 6, 29, 13, 20, tzinfo=UTC))
    on_a = cluster.a.stub.ScoreRoute(crossing, timeout=30)
    on_b = cluster.b.stub.ScoreRoute(crossing, timeout=30)
    assert on_a.crossings[0].wait_source == pb.WAIT_SOURCE_LIVE
    assert not on_a.cached and on_b.cached


def test_build_and_activate_reaches_replicas_that_follow_redis(cluster):
    """``layers build --activate`` with the Redis settings must switch the replicas like
    ``layers activate`` does, also once the shared key has been set."""
    client = cluster.redis()
    client.set(cluster.prefix + "layers:active", cluster.v1)
    client.close()
    for replica in cluster.replicas:
        eventually(lambda r=replica: r.layer_version() == cluster.v1, f"{replica.name} serves V1", cluster)
    built = run_cli(
        "layers", "build", str(POINTS), "--out", str(cluster.store), "--name", "v2", "--activate", env=cluster.env()
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().splitlines()[-1] == cluster.v2
    assert LayerStore(cluster.store).active_version() == cluster.v2
    for replica in cluster.replicas:
        eventually(lambda r=replica: r.layer_version() == cluster.v2, f"{replica.name} serves V2", cluster)
