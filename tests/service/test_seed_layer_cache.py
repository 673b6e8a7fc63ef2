"""The seed layer cache serves the very layer a fit gives, and never a stale or damaged one."""

from __future__ import annotations

import json

import numpy as np
import pytest

import seeds
from geodata.layer_files import content_version
from geodata.layers import ARRAY_NAMES, RiskLayer
from service.store import seed_layer
from service.store.seed_layer import cache_key, cached_seed_layer
from service.store.serving import fit_seed_layer


@pytest.fixture(scope="module")
def fitted() -> RiskLayer:
    return fit_seed_layer(8)


class Builds:
    """A build function that counts its calls."""

    def __init__(self, layer: RiskLayer) -> None:
        self.layer = layer
        self.calls = 0

    def __call__(self) -> RiskLayer:
        self.calls += 1
        return self.layer


def assert_same_layer(got: RiskLayer, want: RiskLayer) -> None:
    assert got.version == want.version
    assert got.resolution == want.resolution
    for name in ARRAY_NAMES:
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype, name
            assert np.array_equal(a, b), name
    assert json.dumps(got.metadata, sort_keys=True) == json.dumps(want.metadata, sort_keys=True, default=str)
    # the content hash of what was read is the version the fit gave
    arrays = {name: getattr(got, name) for name in ARRAY_NAMES}
    assert content_version(got.resolution, arrays, got.metadata) == want.version


def test_the_second_start_loads_the_layer_the_first_one_fitted(tmp_path, fitted: RiskLayer) -> None:
    builds = Builds(fitted)
    first = cached_seed_layer(builds, 8, tmp_path)
    second = cached_seed_layer(builds, 8, tmp_path)
    assert builds.calls == 1
    assert first is fitted
    assert second is not fitted
    assert_same_layer(second, fitted)
    assert [p.name for p in tmp_path.iterdir()] == [cache_key(8)]  # no temporary folder left behind


def test_a_damaged_entry_is_rebuilt_not_served(tmp_path, fitted: RiskLayer) -> None:
    builds = Builds(fitted)
    cached_seed_layer(builds, 8, tmp_path)
    intensity = tmp_path / cache_key(8) / "intensity.npy"
    data = bytearray(intensity.read_bytes())
    data[-1] ^= 0xFF
    intensity.write_bytes(bytes(data))
    again = cached_seed_layer(builds, 8, tmp_path)
    assert builds.calls == 2
    assert again is fitted
    assert_same_layer(cached_seed_layer(builds, 8, tmp_path), fitted)  # and the entry was rewritten
    assert builds.calls == 2


def test_the_key_follows_the_incidents_the_code_and_the_resolution(tmp_path) -> None:
    code = tmp_path / "geodata"
    code.mkdir()
    (code / "fit.py").write_text("WEIGHT = 1\n", encoding="utf-8")
    builder = tmp_path / "serving.py"
    builder.write_text("NAME = 'seed'\n", encoding="utf-8")
    csv = tmp_path / "incidents.csv"
    csv.write_bytes(seeds.INCIDENTS_CSV.read_bytes())
    keys = {cache_key(8, csv, code, builder)}
    assert cache_key(8, csv, code, builder) in keys  # deterministic
    keys.add(cache_key(7, csv, code, builder))
    (code / "fit.py").write_text("WEIGHT = 2\n", encoding="utf-8")
    keys.add(cache_key(8, csv, code, builder))
    builder.write_text("NAME = 'seed2'\n", encoding="utf-8")
    keys.add(cache_key(8, csv, code, builder))
    csv.write_bytes(csv.read_bytes() + b"\n")
    keys.add(cache_key(8, csv, code, builder))
    renamed = csv.rename(tmp_path / "other.csv")
    keys.add(cache_key(8, renamed, code, builder))
    assert len(keys) == 6  # every change above is a new key


def test_an_unwritable_cache_costs_only_the_fit(tmp_path, fitted: RiskLayer) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    builds = Builds(fitted)
    assert cached_seed_layer(builds, 8, blocker / "cache") is fitted
    assert cached_seed_layer(builds, 8, blocker / "cache") is fitted
    assert builds.calls == 2


def test_the_cache_folder_comes_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(seed_layer.CACHE_ENV, str(tmp_path / "here"))
    assert seed_layer.cache_dir() == tmp_path / "here"
    monkeypatch.setenv(seed_layer.CACHE_ENV, "off")
    assert seed_layer.cache_dir() is None
    monkeypatch.delenv(seed_layer.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert seed_layer.cache_dir() == tmp_path / "xdg" / "routerisk" / "seed-layers"


def test_with_the_cache_off_every_start_fits(monkeypatch, fitted: RiskLayer) -> None:
    monkeypatch.setenv(seed_layer.CACHE_ENV, "off")
    builds = Builds(fitted)
    cached_seed_layer(builds, 8)
    cached_seed_layer(builds, 8)
    assert builds.calls == 2


def test_an_entry_written_meanwhile_by_another_start_is_kept(tmp_path, fitted: RiskLayer) -> None:
    builds = Builds(fitted)
    cached_seed_layer(builds, 8, tmp_path)
    entry = tmp_path / cache_key(8)
    before = (entry / "intensity.npy").stat().st_ino
    seed_layer._store(fitted, entry)  # a second start that fitted too and now stores its copy
    assert (entry / "intensity.npy").stat().st_ino == before
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]
