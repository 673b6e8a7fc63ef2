"""``python -m tools.reliability suite|overload|soak|report`` (run from the repository root).

- ``suite``: the tests of every scenario in ``docs/reliability.md``, recording their figures
  and outcomes into ``docs/reliability.json``, then the page is re-rendered;
- ``overload [--seconds 30] [--factor 2]``: the long overload run (figures "long");
- ``soak [--requests 200000]``: the long soak (figures "long");
- ``report [--check]``: re-render ``docs/reliability.md`` (``--check``: exit 1 when stale).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.reliability import checks, report
from tools.reliability.figures import DEFAULT_PATH, ENV, record


def _files() -> list[str]:
    files: list[str] = []
    for scenario in report.SCENARIOS:
        for test in scenario.tests:
            if test not in files:
                files.append(test)
    return files


def suite(figures: Path) -> int:
    env = {**os.environ, ENV: str(figures)}
    data = json.loads(figures.read_text()) if figures.exists() else {}
    data["tests"] = {}  # outcomes are those of this run
    figures.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *_files()], env=env)
    report.write(figures)
    return code


def _long(name: str, run, check) -> int:  # type: ignore[no-untyped-def]
    os.environ.setdefault(ENV, str(DEFAULT_PATH))
    with tempfile.TemporaryDirectory(prefix=f"routerisk-{name}-") as folder:
        figures = run(Path(folder))
    print(json.dumps(figures, indent=2, default=str))
    record(name, "long", **figures)
    report.write(Path(os.environ[ENV]))
    try:
        check(figures)
    except AssertionError as exc:
        print(f"{name}: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"{name}: passed; figures in {os.environ[ENV]}, docs/reliability.md updated", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reliability", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("suite", help="run the scenario tests, record figures, re-render the page")
    over = sub.add_parser("overload", help="the long overload run")
    over.add_argument("--seconds", type=float, default=30.0, help="length of each phase (capacity, overload)")
    over.add_argument("--factor", type=float, default=2.0, help="offered rate / measured capacity")
    over.add_argument("--cap", type=int, default=4, help="ROUTERISK_MAX_CONCURRENT_RPCS of the server")
    soak = sub.add_parser("soak", help="the long soak")
    soak.add_argument("--requests", type=int, default=200_000)
    soak.add_argument("--concurrency", type=int, default=8)
    soak.add_argument("--max-seconds", type=float, default=1_200.0, help="stop here whatever the count")
    rep = sub.add_parser("report", help="re-render docs/reliability.md")
    rep.add_argument("--check", action="store_true", help="exit 1 when docs/reliability.md is stale")
    args = parser.parse_args(argv)
    if args.command == "suite":
        return suite(Path(os.environ.get(ENV, DEFAULT_PATH)))
    if args.command == "overload":
        from tools.reliability.load import run_overload

        return _long(
            "overload",
            lambda folder: run_overload(folder, seconds=args.seconds, cap=args.cap, factor=args.factor),
            checks.overload,
        )
    if args.command == "soak":
        from tools.reliability.load import run_soak

        return _long(
            "soak",
            lambda folder: run_soak(
                folder, requests=args.requests, concurrency=args.concurrency, max_seconds=args.max_seconds
            ),
            lambda figures: checks.soak(figures, args.requests),
        )
    path = Path(os.environ.get(ENV, DEFAULT_PATH))
    if args.check:
        if report.is_current(path):
            return 0
        print("docs/reliability.md is stale: run python -m tools.reliability report", file=sys.stderr)
        return 1
    report.write(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
