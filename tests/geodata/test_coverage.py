"""Coverage as layer data (versioned, stored, checked) and the arithmetic of covered cells."""

from __future__ import annotations

import json

import h3.api.basic_int as h3i
import numpy as np
import pytest

import seeds
from geodata import coverage
from geodata.layer_files import LayerRejectedError, file_digests
from geodata.layers import RiskLayer, load_layer, save_layer, with_coverage, with_version


def _tiny_layer() -> RiskLayer:
    cells = np.array(sorted({h3i.latlng_to_cell(19.4, -99.1, 8), h3i.latlng_to_cell(19.5, -99.2, 8)}), np.uint64)
    layer = RiskLayer(
        resolution=8,
        cells=cells,
        intensity=np.full((2, 168), 1e-6, np.float32),
        incident_count=np.ones(2, np.int32),
        last_incident_s=np.zeros(2, np.int64),
        metadata={"name": "tiny"},
    )
    return with_version(layer)


def test_coverage_is_part_of_the_version_and_survives_a_round_trip(tmp_path):
    layer = _tiny_layer()
    area = coverage.compacted([h3i.latlng_to_cell(19.4, -99.1, 5)])
    covered = with_coverage(layer, area, "test area")
    assert covered.version != layer.version
    assert covered.metadata["coverage"] == {"source": "test area", "cells": 1, "resolution": 5}
    assert with_coverage(layer, area, "test area").version == covered.version  # deterministic
    save_layer(covered, tmp_path / covered.version)
    loaded = load_layer(tmp_path / covered.version)
    assert loaded.version == covered.version
    assert loaded.coverage is not None and loaded.coverage.tolist() == area.tolist()


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (lambda cells: cells[::-1], "sorted"),
        (lambda cells: np.array([h3i.latlng_to_cell(19.4, -99.1, 9)], np.uint64), "resolution 8 or coarser"),
    ],
)
def test_a_stored_coverage_that_is_not_cells_is_refused(tmp_path, bad, why):
    area = np.array(sorted([h3i.latlng_to_cell(19.4, -99.1, 5), h3i.latlng_to_cell(25.0, -100.0, 5)]), dtype=np.uint64)
    layer = with_coverage(_tiny_layer(), area, "test")
    folder = tmp_path / layer.version
    save_layer(layer, folder)
    np.save(folder / "coverage.npy", bad(area))
    header = json.loads((folder / "layer.json").read_text())
    # the file's hash recorded anew: the check of values, not of hashes, is what refuses it
    header["sha256"] = file_digests(folder, list(header["sha256"]))
    (folder / "layer.json").write_text(json.dumps(header))
    with pytest.raises(LayerRejectedError) as caught:
        load_layer(folder)
    assert caught.value.reason == "values"
    assert why in str(caught.value)


def test_a_cell_is_covered_by_any_ancestor_in_a_compacted_set():
    parent = h3i.latlng_to_cell(19.4, -99.1, 5)
    fine = h3i.latlng_to_cell(25.0, -100.0, 7)
    area = [*coverage.compacted([parent]).tolist(), fine]
    area_arr = np.array(sorted(area), dtype=np.uint64)
    inside = h3i.latlng_to_cell(*h3i.cell_to_latlng(parent), 8)
    beside = h3i.cell_to_center_child(fine, 8)
    outside = h3i.latlng_to_cell(34.0, -118.0, 8)
    assert coverage.covered(area_arr, np.array([inside, beside, outside], np.uint64)).tolist() == [True, True, False]


def test_uncovered_runs_are_each_reported_in_order():
    cells = np.array([h3i.latlng_to_cell(19.4, -99.1, 8)] * 2 + [h3i.latlng_to_cell(34.0, -118.0, 8)] * 2, np.uint64)
    cells = np.concatenate([cells, cells])  # in, in, out, out, in, in, out, out
    area = coverage.compacted([h3i.latlng_to_cell(19.4, -99.1, 5)])
    result = coverage.of_route(area, cells, np.ones(len(cells)))
    assert result.fraction == 0.5
    assert result.stretches == ((2, 3), (6, 7))
    assert not result.mostly_outside  # exactly half inside keeps a level


def test_a_layer_without_recorded_coverage_counts_everything_covered():
    result = coverage.of_route(None, np.array([h3i.latlng_to_cell(34.0, -118.0, 8)], np.uint64), np.ones(1))
    assert (result.fraction, result.stretches, result.recorded) == (1.0, (), False)


def test_the_seed_coverage_is_mexico_and_stops_at_the_boundary():
    area = coverage.read_cells_json(seeds.COVERAGE_CELLS_JSON, 7)
    places = {
        "Mexico City": (19.43, -99.13),
        "Nuevo Laredo": (27.48, -99.52),
        "Mérida": (20.97, -89.62),
        "La Paz": (24.14, -110.31),
        "Manzanillo port": (19.05, -104.31),
        "Laredo, TX": (27.53, -99.48),
        "Los Angeles": (34.05, -118.24),
        "Guatemala City": (14.63, -90.51),
    }
    lat = np.array([p[0] for p in places.values()])
    lng = np.array([p[1] for p in places.values()])
    cells = np.array([h3i.latlng_to_cell(a, b, 8) for a, b in zip(lat, lng, strict=True)], np.uint64)
    assert dict(zip(places, coverage.covered(area, cells).tolist(), strict=True)) == {
        **dict.fromkeys(list(places)[:5], True),
        **dict.fromkeys(list(places)[5:], False),
    }


def test_a_coarser_layer_gets_a_coarser_coverage():
    fine = coverage.read_cells_json(seeds.COVERAGE_CELLS_JSON, 7)
    coarse = coverage.read_cells_json(seeds.COVERAGE_CELLS_JSON, 5)
    levels = (coarse >> np.uint64(52)) & np.uint64(0xF)
    assert int(levels.max()) <= 5 and len(coarse) < len(fine)
    mexico_city = np.array([h3i.latlng_to_cell(19.43, -99.13, 5)], np.uint64)
    assert coverage.covered(coarse, mexico_city).tolist() == [True]


def test_polygons_cover_their_centres_and_small_parts_still_count():
    big = [[-100.5, 25.5], [-99.0, 25.5], [-99.0, 27.0], [-100.5, 27.0], [-100.5, 25.5]]
    tiny = [[-99.1001, 19.4001], [-99.1, 19.4001], [-99.1, 19.4], [-99.1001, 19.4001]]
    document = {"type": "MultiPolygon", "coordinates": [[big], [tiny]]}
    area = coverage.of_geojson(document, 7)
    probes = np.array([h3i.latlng_to_cell(26.0, -100.0, 8), h3i.latlng_to_cell(19.40005, -99.10005, 7)], np.uint64)
    assert coverage.covered(area, probes).tolist() == [True, True]
