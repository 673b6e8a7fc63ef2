"""Fuzz-style runs of the ingest parsers: real fixture files, mutated byte by byte (flips,
cuts, insertions, repeated and dropped lines), written to disk and fed to the real entry
points. The outcome is a clear rejection or a correct load, never a half-written layer:

- incident files (point CSV and GeoJSON, SESNSP municipal CSV) through ``routerisk layers
  build`` (the typer app, in process): exit 2 with "nothing was written" and the layer store
  exactly as before (every file, and ``ACTIVE``), or exit 0 with one new complete layer that
  loads, and ``ACTIVE`` untouched;
- CBP wait-time feeds (JSON and XML): ``InvalidFeedError``, or observations that a running
  server accepts through the admin RPC; a rejected batch leaves the border data version as
  it was.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from geodata.cbp_feed import InvalidFeedError
from geodata.layer_store import LayerStore
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli.app import app
from service.config import Settings
from service.grpc.admin_convert import observation_to_proto
from service.grpc.server import load_data, start_server
from tests.conftest import FIXTURES
from tests.geodata.cbp_seeded import parse_feed
from tests.reliability.figures import record

INGEST = FIXTURES / "ingest"
CBP = FIXTURES / "cbp"
FUZZ = settings(
    max_examples=int(os.environ.get("ROUTERISK_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _record_figures() -> Iterator[None]:
    """The figures of the inputs tried, once every test of this module has run (in any order)."""
    yield
    tried = sum(TALLY.values())
    if tried:
        record("fuzz-ingest", "ci", inputs_tried=tried, outcomes=dict(sorted(TALLY.items())), half_written_layers=0)


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` after one to three random edits."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "repeat-line", "drop-line", "text"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=20))
        elif op == "truncate":
            del data[at:]
        elif op == "text":
            data[at:at] = draw(st.sampled_from([b",", b'"', b"\n", b"NaN", b"-999", b"\x00", b"\xef\xbb\xbf", b"{"]))
        elif op in ("repeat-line", "drop-line"):
            lines = bytes(data).split(b"\n")
            k = draw(st.integers(0, len(lines) - 1))
            lines[k:k] = [lines[k]] if op == "repeat-line" else []
            if op == "drop-line":
                del lines[k]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def listing(root: Path) -> dict[str, str]:
    """Every file under the store with a hash of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> LayerStore:
    """A store with one active layer built from the unmodified points file."""
    root = tmp_path_factory.mktemp("fuzz-store")
    result = CliRunner().invoke(app, ["layers", "build", str(INGEST / "points.csv"), "--out", str(root), "--activate"])
    assert result.exit_code == 0, result.output
    return LayerStore(root)


def build_and_check(store: LayerStore, path: Path, extra: list[str], kind: str) -> None:
    before = listing(store.root)
    active = store.active_version()
    result = CliRunner().invoke(app, ["layers", "build", str(path), "--out", str(store.root), *extra])
    after = listing(store.root)
    assert store.active_version() == active, "a build changed ACTIVE"
    assert not any(".tmp-" in name for name in after), "a scratch folder was left behind"
    if result.exit_code == 2:
        TALLY[f"{kind}:rejected"] += 1
        assert "nothing was written" in result.output, result.output
        assert after == before, "a rejected build changed the store"
        return
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output[-2000:]} {result.exception!r}"
    TALLY[f"{kind}:loaded"] += 1
    version = result.stdout.strip().splitlines()[-1]
    new = {name.split("/")[1] for name in set(after) - set(before)}
    assert new <= {version}, new
    assert {k: v for k, v in after.items() if k in before} == before, "a build changed an existing layer"
    layer = store.load(version)  # complete: loads, and its shapes agree
    assert len(layer.cells) == layer.intensity.shape[0] >= 1


POINTS_CSV = (INGEST / "points.csv").read_bytes()
POINTS_GEOJSON = (INGEST / "points.geojson").read_bytes()
SESNSP = (INGEST / "sesnsp_municipal.csv").read_bytes()


@FUZZ
@given(data=mutated(POINTS_CSV))
def test_mutated_point_csv(store, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "incidents.csv"
    path.write_bytes(data)
    build_and_check(store, path, [], "points-csv")


@FUZZ
@given(data=mutated(POINTS_GEOJSON))
def test_mutated_point_geojson(store, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("geojson") / "incidents.geojson"
    path.write_bytes(data)
    build_and_check(store, path, [], "points-geojson")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated(SESNSP))
def test_mutated_sesnsp_csv(store, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sesnsp") / "municipal.csv"
    path.write_bytes(data)
    build_and_check(store, path, ["--municipalities", str(INGEST / "inegi_municipios_slice.geojson")], "sesnsp")


@pytest.fixture(scope="module")
def border_stubs() -> Iterator[tuple[pb_grpc.RouteRiskServiceStub, admin_grpc.RouteRiskAdminServiceStub]]:
    server_settings = Settings(address="127.0.0.1:0")
    running = start_server(server_settings)
    load_data(running, server_settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.RouteRiskServiceStub(channel), admin_grpc.RouteRiskAdminServiceStub(channel)
    running.stop(0)


def feed_and_check(stubs, data: bytes, kind: str) -> None:
    stub, admin = stubs
    try:
        observations, _ = parse_feed(data)
    except InvalidFeedError as exc:
        TALLY[f"{kind}:rejected"] += 1
        assert exc.violations and all(v.field and v.description for v in exc.violations)
        return
    before = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version
    request = admin_pb.LoadBorderObservationsRequest(observations=[observation_to_proto(o) for o in observations])
    try:
        reply = admin.LoadBorderObservations(request, timeout=30)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
        after = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version
        assert after == before, "a rejected batch changed the border data"
        TALLY[f"{kind}:rejected-by-server"] += 1
        return
    TALLY[f"{kind}:loaded"] += 1
    assert reply.accepted + reply.stale <= len(observations)


CBP_JSON = (CBP / "bwtnew-2022-06-29.json").read_bytes()
CBP_XML = (CBP / "bwt-2022-06-29.xml").read_bytes()


@FUZZ
@given(data=mutated(CBP_JSON))
def test_mutated_cbp_json(border_stubs, data):
    feed_and_check(border_stubs, data, "cbp-json")


@FUZZ
@given(data=mutated(CBP_XML))
def test_mutated_cbp_xml(border_stubs, data):
    feed_and_check(border_stubs, data, "cbp-xml")
