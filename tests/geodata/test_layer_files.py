"""geodata.layer_files: the checks a stored layer passes before it may serve, one by one."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import seeds
from geodata.ingest import read_point_incidents
from geodata.layer_files import LayerRejectedError
from geodata.layer_store import LayerStore
from geodata.layers import RiskLayer, build_layer, with_version


@pytest.fixture(scope="module")
def layer() -> RiskLayer:
    incidents = read_point_incidents(seeds.INCIDENTS_CSV)
    return build_layer(incidents.select(np.arange(len(incidents)) < 300), name="small")


def stored(tmp_path: Path, layer: RiskLayer) -> tuple[LayerStore, Path]:
    store = LayerStore(tmp_path / "store")
    return store, store.write(layer)


def refused(store: LayerStore, version: str) -> str:
    with pytest.raises(LayerRejectedError) as info:
        store.load(version)
    assert "0x" not in str(info.value) and "lat" not in str(info.value)  # never a place
    return info.value.reason


def test_a_good_layer_loads_into_memory_and_its_hashes_are_recorded(tmp_path, layer):
    store, folder = stored(tmp_path, layer)
    header = json.loads((folder / "layer.json").read_text())
    assert set(header["sha256"]) == {p.name for p in folder.glob("*.npy")}
    loaded = store.load(layer.version)
    assert not isinstance(loaded.intensity, np.memmap) and not loaded.intensity.flags.writeable
    np.testing.assert_array_equal(loaded.intensity, layer.intensity)


def test_cells_of_another_resolution_are_refused(tmp_path, layer):
    bad = with_version(replace(layer, resolution=7))  # the cells are resolution 8
    store, _ = stored(tmp_path, bad)
    assert refused(store, bad.version) == "values"


@pytest.mark.parametrize(
    ("field", "value"), [("period_end_s", "soon"), ("incidents", -3), ("inputs", "x"), ("name", 5)]
)
def test_metadata_the_service_reads_must_have_its_type(tmp_path, layer, field, value):
    bad = with_version(replace(layer, metadata={**layer.metadata, field: value}))
    store, _ = stored(tmp_path, bad)
    assert refused(store, bad.version) == "metadata"


def test_an_object_array_is_refused_without_unpickling(tmp_path, layer):
    store, folder = stored(tmp_path, layer)
    path = folder / "lower.npy"
    np.save(path, np.array([object()] * len(layer.cells), dtype=object), allow_pickle=True)
    assert refused(store, layer.version) == "file"


def test_a_fifo_instead_of_a_file_is_refused_without_waiting(tmp_path, layer):
    store, folder = stored(tmp_path, layer)
    path = folder / "upper.npy"
    path.unlink()
    os.mkfifo(path)  # opening it for reading would block until a writer comes
    assert refused(store, layer.version) == "file"


def test_a_padded_file_is_refused(tmp_path, layer):
    store, folder = stored(tmp_path, layer)
    with open(folder / "cells.npy", "ab") as handle:
        handle.write(b"\0" * 8)
    assert refused(store, layer.version) == "size"


def test_a_header_that_is_not_json_or_too_deep_is_refused(tmp_path, layer):
    store, folder = stored(tmp_path, layer)
    (folder / "layer.json").write_text("[" * 100_000)
    assert refused(store, layer.version) == "metadata"
