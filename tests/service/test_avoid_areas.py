"""ExportAvoidAreas through a real channel, the cell merging it rests on, and ``routerisk avoid``."""

from __future__ import annotations

import json

import grpc
import h3.api.basic_int as h3i
import numpy as np
import pytest
import shapely

from geodata.areas import merge_cells
from routerisk.v1 import route_risk_service_pb2 as pb
from service.store.serving import build_seed_layer
from service.usecases.avoid_areas import PRIORITY
from service.usecases.scoring import LEVELS, level_of_rate
from tests.helpers.api import violations_of
from tests.helpers.cli import run_cli

BOX = pb.BoundingBox(west=-100.2, south=19.0, east=-98.6, north=20.2)  # around Mexico City


@pytest.fixture(scope="module")
def expected() -> dict[str, list[int]]:
    """The seed layer's cells in the box, by level (what the session server serves)."""
    layer = build_seed_layer()
    lat, lng = layer.centers
    inside = (lat >= BOX.south) & (lat <= BOX.north) & (lng >= BOX.west) & (lng <= BOX.east)
    out: dict[str, list[int]] = {level: [] for level in LEVELS}
    for cell, mean in zip(layer.cells[inside].tolist(), layer.weekly_mean[inside].tolist(), strict=True):
        out[level_of_rate(mean)].append(cell)
    return out


def centre(cell: int) -> shapely.Point:
    lat, lng = h3i.cell_to_latlng(cell)
    return shapely.Point(lng, lat)


def test_areas_cover_exactly_the_cells_at_the_threshold_or_above(stub, expected) -> None:
    response = stub.ExportAvoidAreas(pb.ExportAvoidAreasRequest(bounds=BOX), timeout=30)
    chosen = {c: level for level in ("high", "severe", "critical") for c in expected[level]}
    assert response.cell_count == len(chosen) > 50
    features = json.loads(response.geojson)["features"]
    assert [f["id"] for f in features] == [a.id for a in response.areas]
    polygons = [shapely.geometry.shape(f["geometry"]) for f in features]
    assert all(p.is_valid for p in polygons)
    for cell, level in chosen.items():
        holders = [f for f, p in zip(features, polygons, strict=True) if p.contains(centre(cell))]
        assert len(holders) == 1 and holders[0]["properties"]["level"] == level
    for cell in expected["low"] + expected["moderate"]:
        assert not any(p.contains(centre(cell)) for p in polygons)
    assert sum(a.cell_count for a in response.areas) == len(chosen)
    risks = [a.risk for a in response.areas]
    assert risks == sorted(risks, reverse=True)


def test_valhalla_rings_fit_the_perimeter_budget(stub, expected) -> None:
    small = stub.ExportAvoidAreas(pb.ExportAvoidAreasRequest(bounds=BOX), timeout=30)
    rings = json.loads(small.valhalla)["exclude_polygons"]
    assert small.valhalla_budget.limit == 10_000 and small.valhalla_budget.used <= 10_000
    assert len(rings) == small.valhalla_budget.included and small.valhalla_budget.left_out > 0
    everything = stub.ExportAvoidAreas(
        pb.ExportAvoidAreasRequest(bounds=BOX, valhalla_max_perimeter_meters=1e9), timeout=30
    )
    assert everything.valhalla_budget.left_out == 0
    outlines = [shapely.Polygon(ring) for ring in json.loads(everything.valhalla)["exclude_polygons"]]
    assert all(ring[0] == ring[-1] for ring in json.loads(everything.valhalla)["exclude_polygons"])
    merged = shapely.union_all(outlines)
    for level in ("high", "severe", "critical"):
        assert all(merged.contains(centre(c)) for c in expected[level])


def test_graphhopper_model_names_its_areas_and_keeps_the_vertex_budget(stub) -> None:
    response = stub.ExportAvoidAreas(
        pb.ExportAvoidAreasRequest(bounds=BOX, min_level=pb.RISK_LEVEL_SEVERE, graphhopper_max_vertices=300),
        timeout=30,
    )
    model = json.loads(response.graphhopper)
    ids = [f["id"] for f in model["areas"]["features"]]
    assert [s["if"] for s in model["priority"]] == [f"in_{i}" for i in ids]
    levels = {a.id: pb.RiskLevel.Name(a.level).removeprefix("RISK_LEVEL_").lower() for a in response.areas}
    for statement, feature_id in zip(model["priority"], ids, strict=True):
        assert float(statement["multiply_by"]) == PRIORITY[levels[feature_id]]
    vertices = sum(a.vertex_count for a in response.areas if a.in_graphhopper)
    assert vertices == response.graphhopper_budget.used <= 300
    assert response.graphhopper_budget.left_out > 0 and {a.id for a in response.areas if a.in_graphhopper} == set(ids)
    assert all(a.level >= pb.RISK_LEVEL_SEVERE for a in response.areas)


def test_a_ring_of_cells_keeps_its_hole() -> None:
    middle = h3i.latlng_to_cell(19.43, -99.13, 8)
    ring = np.array(h3i.grid_ring(middle, 1), dtype=np.uint64)
    (area,) = merge_cells(ring)
    assert len(area.rings) == 2 and len(area.cells) == 6
    polygon = shapely.Polygon(area.rings[0], [area.rings[1]])
    assert polygon.is_valid and not polygon.contains(centre(middle))
    assert all(polygon.contains(centre(c)) for c in ring.tolist())
    two = merge_cells(np.array([middle, h3i.latlng_to_cell(25.0, -100.0, 8)], dtype=np.uint64))
    assert len(two) == 2 and all(a.vertex_count == 6 for a in two)


def test_bad_requests_name_the_field(stub) -> None:
    bad = pb.ExportAvoidAreasRequest(
        bounds=pb.BoundingBox(west=-200, south=19, east=-98, north=20), min_level=pb.RISK_LEVEL_LOW
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.ExportAvoidAreas(bad, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in violations_of(caught.value)} == {"bounds.west", "min_level"}
    unknown = pb.ExportAvoidAreasRequest(bounds=BOX, min_level=99, valhalla_max_perimeter_meters=float("nan"))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ExportAvoidAreas(unknown, timeout=30)
    fields = {v.field: v.description for v in violations_of(caught.value)}
    assert "99" in fields["min_level"] and "valhalla_max_perimeter_meters" in fields


def test_cli_writes_the_fragment_and_reports_the_budget(server_process, tmp_path) -> None:
    address, _, _ = server_process
    out = tmp_path / "exclude.json"
    bbox = f"{BOX.west},{BOX.south},{BOX.east},{BOX.north}"
    result = run_cli("avoid", "--bbox", bbox, "--format", "valhalla", "--out", str(out), "--server", address)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "of 10,000 m of perimeter" in result.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["exclude_polygons"]
    geojson = run_cli("avoid", "--bbox", bbox, "--threshold", "critical", "--server", address)
    assert json.loads(geojson.stdout)["type"] == "FeatureCollection"
    wrong = run_cli("avoid", "--bbox", "-100,19,-98", "--server", address)
    assert wrong.returncode == 2 and "--bbox" in wrong.stderr
