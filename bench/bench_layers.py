"""Benchmark of layer builds and loads.

Run from the repository root::

    python bench/bench_layers.py [--incidents 1000000]

Incidents: the synthetic seed set resampled with spatial (±2 km) and time (±30 days)
jitter up to the requested count, so they stay on the freight corridors. Prints the build
time, peak resident memory (of this process, which does nothing else), the artifact size
and the load time; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import seeds
from geodata.incidents import IncidentSet, read_canonical_csv
from geodata.layers import build_layer, load_layer, save_layer


def resampled(base: IncidentSet, n: int, seed: int = 11) -> IncidentSet:
    """``n`` incidents drawn from ``base`` with jitter (ids made unique)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), n)
    shift_s = rng.integers(-30 * 86400, 30 * 86400, n)
    jitter = rng.normal(0.0, 0.01, (2, n))
    picked = base.select(pick)
    return replace(
        picked,
        ids=np.array([f"r{i}" for i in range(n)], dtype=object),
        lat=np.clip(picked.lat + jitter[0], -89.9, 89.9),
        lng=picked.lng + jitter[1],
        utc_s=picked.utc_s + shift_s,
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    count = parser.parse_args().incidents
    incidents = resampled(read_canonical_csv(seeds.INCIDENTS_CSV), count)
    before = peak_rss_mib()
    started = time.perf_counter()
    layer = build_layer(incidents, name="bench")
    build_s = time.perf_counter() - started
    peak = peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / layer.version
        started = time.perf_counter()
        save_layer(layer, folder)
        save_s = time.perf_counter() - started
        size_mib = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        started = time.perf_counter()
        loaded = load_layer(folder)
        _ = loaded.rates(loaded.cells[:1000], np.zeros(1000, dtype=np.int16)).sum()
        load_s = time.perf_counter() - started
    print(f"incidents                 {count:>12,}")
    print(f"cells                     {len(layer.cells):>12,}")
    print(f"build                     {build_s:>12.2f} s")
    print(f"peak RSS before / after   {before:>8.0f} / {peak:.0f} MiB")
    print(f"artifact size             {size_mib:>12.1f} MiB")
    print(f"save                      {save_s:>12.2f} s")
    print(f"load (mmap) + first reads {load_s * 1000:>12.1f} ms")


if __name__ == "__main__":
    main()
