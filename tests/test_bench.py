"""The benchmark's own correctness: the contenders answer the same question as routerisk, the echo
floor answers, and a miniature ``python -m bench`` run goes end to end into a report.

Nothing here times anything; the figures come from ``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import seeds
from bench import contenders, report
from bench.data import length_routes, ranking_routes, write_incidents
from bench.run import Plan, run
from bench.serving import Server, echo_target, measure
from geodata.border import load_border_data
from geodata.geometry import haversine_km
from geodata.ingest import read_incidents
from geodata.layers import BuildParams, build_layer
from service.usecases.scoring import ModelOptions, ScoreQuery, score_route


def postgis_dsn() -> str | None:
    """The bench database's DSN when PostgreSQL with PostGIS is already here (tests install nothing)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(contenders.DSN, autocommit=True, connect_timeout=3) as connection:
            if not connection.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone():
                return None
    except psycopg.OperationalError:
        return None
    return contenders.ensure_postgis()


@pytest.fixture(scope="module")
def incidents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "incidents.csv"
    write_incidents(path, 5_000)
    return path


def test_incident_file_is_ingestible_and_on_the_corridors(incidents_file: Path) -> None:
    incidents, _ = read_incidents([incidents_file])
    seed, _ = read_incidents([seeds.INCIDENTS_CSV])
    assert len(incidents) == 5_000
    # resampled from the seeds with about 1 km of jitter: every incident within 0.1° of the seeds' range
    assert incidents.lat.min() > seed.lat.min() - 0.1 and incidents.lat.max() < seed.lat.max() + 0.1
    assert incidents.utc_s.max() <= seed.utc_s.max() + 31 * 86400


def test_routes_have_the_lengths_asked_for() -> None:
    routes = length_routes([10, 100, 1000, 3000])
    assert [round(r.km) for r in routes] == [10, 100, 999, 2999]
    assert all(abs(len(r.path) - 2 * r.km) <= 0.01 * r.km for r in routes)  # two vertices per km
    ranking = ranking_routes(8)
    assert len(ranking) == 8 and len({r.name for r in ranking}) == 8


def test_contenders_answer_the_same_question_as_routerisk(incidents_file: Path) -> None:
    """Same weights, same corridor: PostGIS and GeoPandas agree with each other, and all three rank
    routes from safe to dangerous alike."""
    incidents, _ = read_incidents([incidents_file])
    params = BuildParams()
    layer = build_layer(incidents, params, name="test")
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    routes = ranking_routes(10)
    ours = [
        score_route(ScoreQuery(r.path, 1_741_752_000, 60.0), layer, border, ModelOptions()).expected for r in routes
    ]
    geopandas = contenders.GeoPandasContender(incidents, params, corridor_km=2.0)
    theirs = [geopandas.answer(r.path) for r in routes]
    assert max(a.count for a in theirs) > 50, "the ranking set must include routes on the corridors"
    # a count by hand for the busiest route: incidents within 2 km of its nearest vertex (haversine); the
    # vertices are 0.5 km apart, so the distance to the line is shorter by at most ~20 m
    busiest = int(np.argmax([a.count for a in theirs]))
    path = routes[busiest].path
    near = haversine_km(incidents.lat[:, None], incidents.lng[:, None], path.lat[None, :], path.lng[None, :])
    assert theirs[busiest].count == pytest.approx(int((near.min(axis=1) <= 2.0).sum()), rel=0.03)
    ranks = pd.DataFrame({"ours": ours, "theirs": [a.weighted for a in theirs]}).rank()
    assert np.corrcoef(ranks["ours"], ranks["theirs"])[0, 1] >= 0.8
    dsn = postgis_dsn()
    if dsn is None:
        pytest.skip("PostgreSQL with PostGIS is not installed here (python -m bench installs it)")
    postgis = contenders.PostGISContender(dsn, incidents_file, incidents, params, corridor_km=2.0)
    try:
        for route, answer in zip(routes, theirs, strict=True):
            plain, subdivided = postgis.answer(route.path, "plain"), postgis.answer(route.path, "subdivided")
            assert plain.count == subdivided.count
            assert plain.weighted == pytest.approx(subdivided.weighted, rel=1e-9)
            assert plain.count == pytest.approx(answer.count, rel=0.02, abs=2)
            assert plain.weighted == pytest.approx(answer.weighted, rel=0.02, abs=2)
    finally:
        postgis.close()


def test_echo_floor_answers_with_the_configured_size() -> None:
    with Server.echo(1, 321) as server:
        load = measure(server.address, echo_target(1000), concurrency=4, seconds=0.3)
    assert load.calls > 0 and load.p50_ms > 0
    assert server.process.returncode == 0  # stopped by SIGTERM, cleanly


def test_a_miniature_run_goes_end_to_end_into_the_report(tmp_path: Path) -> None:
    """``python -m bench`` in miniature: data, layers, contenders, agreement, gRPC, echo, plots, document."""
    plan = Plan(
        incidents=(2_000, 5_000),
        lengths_km=(10, 100, 1000),
        ranking_routes=6,
        runs=3,
        budget_s=0.05,
        load_seconds=0.2,
        grpc_lengths_km=(100,),
        concurrency=(1, 4),
        workers=(1,),
        batch_size=5,
        target_incidents=5_000,
    )
    args = argparse.Namespace(
        quick=True, corridor_km=2.0, no_postgis=postgis_dsn() is None, redis_url="redis://127.0.0.1:1/0"
    )
    results = run(plan, args)
    report.save(results, tmp_path / "results.json")
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert {c["incidents"] for c in saved["scoring"]} == {2_000, 5_000}
    assert saved["agreement"]["spearman"], "the agreement check ran"
    assert {row["concurrency"] for row in saved["serving"]["cases"]} == {1, 4}
    assert saved["serving"]["echo"] and saved["serving"]["batch"]
    assert "not reachable" in saved["serving"]["redis"]["skipped"]
    report.write_docs(saved, tmp_path / "docs")
    page = (tmp_path / "docs" / "performance.md").read_text(encoding="utf-8")
    assert "## Targets" in page and "bare grpcio echo" in page
    for name in ("bench-length.png", "bench-incidents.png", "bench-concurrency.png"):
        assert (tmp_path / "docs" / "figures" / name).read_bytes().startswith(b"\x89PNG")
        assert f"figures/{name}" in page
