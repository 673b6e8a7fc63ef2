"""Time and peak memory of ``routerisk layers build`` on N incidents (default 1,000,000).

``python -m bench.build_1m [--count N] [--keep DIR]`` writes N incidents with
:func:`bench.data.write_incidents` (the seed corridors, resampled with jitter), then runs
``routerisk layers build`` on them in a child process and reports its wall time and peak
resident memory (``ru_maxrss`` of the child), then adds 1,000 new incidents with
``layers build --incremental`` and reports its time.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.data import write_incidents


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the incidents and the store here (kept)")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="build1m-"))
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"incidents_{args.count}.csv"
    if not csv_path.exists():
        write_incidents(csv_path, args.count)
    routerisk = Path(sys.executable).with_name("routerisk")
    command = [str(routerisk), "layers", "build", str(csv_path), "--out", str(folder / "store")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(result.stderr.strip())
    if result.returncode != 0:
        raise SystemExit(f"layers build failed ({result.returncode})")
    print(f"layers build: {args.count:,} incidents in {elapsed:.1f} s, peak RSS {max(peak_kib, before) / 1024:.0f} MiB")
    version = result.stdout.strip().splitlines()[-1]
    # then --incremental with 1,000 new incidents (ids shifted past the base's)
    new_path = folder / "incidents_new.csv"
    write_incidents(new_path, 1000, seed=99)
    frame = pd.read_csv(new_path, dtype=str)
    frame["id"] = [f"new-{i}" for i in range(len(frame))]
    frame.to_csv(new_path, index=False)
    command = [str(routerisk), "layers", "build", str(new_path), "--out", str(folder / "store"), "--incremental"]
    command += ["--base", version]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"incremental build failed: {result.stderr}")
    print(f"layers build --incremental: +1,000 incidents in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
