"""docs/reliability.md is what ``python -m tools.reliability report`` renders from
docs/reliability.json, and every test it names exists."""

from __future__ import annotations

import ast

from tools.reliability import report
from tools.reliability.figures import DEFAULT_PATH, load


def test_the_page_is_current():
    assert report.DOC.exists(), "run: python -m tools.reliability suite"
    assert report.is_current(), "docs/reliability.md is stale: run python -m tools.reliability report"


def test_every_named_test_exists():
    for scenario in report.SCENARIOS:
        for test in scenario.tests:
            path, _, name = test.partition("::")
            source = report.ROOT / path
            assert source.is_file(), test
            if name:
                functions = {n.name for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.FunctionDef)}
                assert name in functions, test


def test_the_recorded_runs_saw_nothing_lost():
    data = load(DEFAULT_PATH)
    failed = [nodeid for nodeid, r in data.get("tests", {}).items() if r["outcome"] == "failed"]
    assert failed == []
    scenarios = data.get("scenarios", {})
    assert scenarios["fuzz-api"]["ci"]["unknown_or_internal"] == 0
    assert scenarios["overload"]["ci"]["mismatches"] == 0
    assert scenarios["soak"]["ci"]["unexpected"] == 0
    for entry in scenarios.get("redis-faults", {}).values():
        if isinstance(entry, dict) and "calls" in entry:
            assert entry["errors"] == 0 and entry["mismatches"] == 0
