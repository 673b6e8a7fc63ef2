"""Benchmark of a layer build from a file, and of loading the layer.

Run from the repository root::

    python bench/bench_layers.py [--incidents 1000000]

It writes a canonical incident CSV of the requested size (the synthetic seed incidents
resampled with ±1 km and ±30 days of jitter, so they stay on the freight corridors), then
times what ``routerisk layers build`` does: ingest and validate the file, build the layer,
write it to a store; and then a server's load of it. Prints times and this process's peak
resident memory; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import seeds
from geodata.ingest import read_incidents
from geodata.layer_store import LayerStore
from geodata.layers import build_layer


def write_incidents(path: Path, count: int, seed: int = 11) -> None:
    """``count`` canonical rows resampled from the seed incidents."""
    with open(seeds.INCIDENTS_CSV, newline="", encoding="utf-8") as handle:
        base = list(csv.DictReader(handle))
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), count)
    shift = rng.integers(-30 * 86400, 30 * 86400, count)
    jitter = rng.normal(0.0, 0.01, (2, count))
    latest = datetime(2025, 12, 31, tzinfo=UTC).timestamp()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "occurred_at", "latitude", "longitude", "type", "violent", "source"])
        for i in range(count):
            row = base[pick[i]]
            when = datetime.fromisoformat(row["occurred_at"])
            moved = datetime.fromtimestamp(min(when.timestamp() + shift[i], latest), when.tzinfo)
            lat = float(row["latitude"]) + jitter[0, i]
            lng = float(row["longitude"]) + jitter[1, i]
            out.writerow([i, moved.isoformat(), f"{lat:.5f}", f"{lng:.5f}", row["type"], row["violent"], "bench"])


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    count = parser.parse_args().incidents
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "incidents.csv"
        write_incidents(source, count)
        size_mib = source.stat().st_size / 2**20
        before = peak_rss_mib()
        started = time.perf_counter()
        incidents, _ = read_incidents([source])
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        layer = build_layer(incidents, name="bench")
        build_s = time.perf_counter() - started
        store = LayerStore(Path(tmp) / "store")
        started = time.perf_counter()
        store.write(layer)
        store.activate(layer.version)
        write_s = time.perf_counter() - started
        peak = peak_rss_mib()
        started = time.perf_counter()
        loaded = store.load(layer.version)
        loaded.rates(loaded.cells[:1000], np.zeros(1000, dtype=np.int16))
        load_ms = (time.perf_counter() - started) * 1000
        artifact_mib = sum(p.stat().st_size for p in (store.root / "layers" / layer.version).iterdir()) / 2**20
    print(f"incidents in the CSV       {count:>12,}  ({size_mib:.0f} MiB)")
    print(f"cells in the layer         {len(layer.cells):>12,}  (artifact {artifact_mib:.1f} MiB)")
    print(f"ingest + validate          {ingest_s:>12.2f} s")
    print(f"build                      {build_s:>12.2f} s")
    print(f"write + activate           {write_s:>12.2f} s")
    print(f"total (what layers build does) {ingest_s + build_s + write_s:>8.2f} s")
    print(f"peak RSS before / after    {before:>8.0f} / {peak:.0f} MiB")
    print(f"load at server start (mmap) + first reads {load_ms:>6.1f} ms")


if __name__ == "__main__":
    main()
