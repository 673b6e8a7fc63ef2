"""Backtest the model on generated evaluation data (several seeds) and on the seed incidents.

``python -m bench.model_eval [--seeds 1 2 3] [--splits 4] [--test-days 90] [--out DIR]``

For each seed of :mod:`bench.eval_data` the file is written, read back through the normal
ingest path, and backtested with rolling origins from day 730 on; the ``best`` row is the
process's own expected counts (:func:`bench.eval_data.best_forecast`). Prints one line per
split and method, and ``model / best`` at 5 % of the area; ``--out`` writes JSON there.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench import eval_data
from geodata.backtest import backtest
from geodata.ingest import read_point_incidents

SHOWN = ("model", "model-near_repeat", "model-background", "model-trend", "kde", "recent", "counts", "best")


def run_seed(seed: int, splits: int, test_days: int) -> dict:
    data = eval_data.simulate(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"eval{seed}.csv"
        eval_data.write_csv(data, path)
        incidents = read_point_incidents(path)
    origin = int(eval_data.day_to_epoch(np.array([730.0]))[0])

    def reference(candidates: np.ndarray, start: int, end: int) -> np.ndarray:
        cells, expected = eval_data.best_forecast(seed, data, start, end)
        rows = np.minimum(np.searchsorted(cells, candidates), max(len(cells) - 1, 0))
        return np.where(cells[rows] == candidates, expected[rows], 0.0) if len(cells) else np.zeros(len(candidates))

    report = backtest(incidents, train_until_s=origin, test_days=test_days, splits=splits, reference=reference)
    return report.to_dict()


def summarise(name: str, report: dict) -> list[str]:
    lines = []
    for split in report["splits"]:
        if split["empty"]:
            lines.append(f"{name} {split['train_until'][:10]}: empty test window")
            continue
        by = {m["name"]: m for m in split["methods"]}
        for method in SHOWN:
            if method not in by:
                continue
            m = by[method]
            pai = " ".join(f"{m['pai'][k]:6.2f}" for k in ("0.01", "0.05", "0.1"))
            when = split["train_until"][:10]
            lines.append(f"{name} {when} n={split['test_incidents']:4d} {method:<18} {pai}  ll {m['loglik']:+.3f}")
        if "best" in by:
            ratio = by["model"]["hit_rate"]["0.05"] / max(by["best"]["hit_rate"]["0.05"], 1e-12)
            lines.append(f"{name} {split['train_until'][:10]} model/best hit at 5 %: {ratio:.1%}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--splits", type=int, default=4)
    parser.add_argument("--test-days", type=int, default=90)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed-data", action="store_true", help="also backtest seeds/incidents_synthetic.csv")
    args = parser.parse_args(argv)
    results = {}
    for seed in args.seeds:
        results[f"seed{seed}"] = run_seed(seed, args.splits, args.test_days)
        print("\n".join(summarise(f"seed{seed}", results[f"seed{seed}"])), flush=True)
    if args.seed_data:
        from datetime import UTC, datetime

        import seeds

        incidents = read_point_incidents(seeds.INCIDENTS_CSV)
        origin = int(datetime(2024, 10, 1, tzinfo=UTC).timestamp())
        results["seeds"] = backtest(
            incidents, train_until_s=origin, test_days=args.test_days, splits=args.splits
        ).to_dict()
        print("\n".join(summarise("seeds", results["seeds"])), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "model_eval.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
