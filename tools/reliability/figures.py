"""Figures the reliability runs measure, kept in one JSON file that ``report`` turns into
``docs/reliability.md``.

A test calls :func:`record` with what it saw (calls made, errors, latencies, inputs tried).
Nothing is written unless ``ROUTERISK_RELIABILITY_FIGURES`` names a file: a plain ``pytest``
run leaves the tree clean, ``python -m tools.reliability suite`` (or ``load``/``soak``)
sets it to ``docs/reliability.json``. Entries are merged under their scenario id, so a
run of one scenario keeps the figures of the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ENV = "ROUTERISK_RELIABILITY_FIGURES"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "reliability.json"


def target() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def _machine() -> str:
    return f"{os.cpu_count()} CPU, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {"scenarios": {}, "tests": {}}


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"routerisk-figures-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(path)
        yield data
        scratch = path.with_suffix(path.suffix + ".tmp")
        scratch.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(scratch, path)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def current_test() -> str:
    """The running test's function name (from ``PYTEST_CURRENT_TEST``), for per-test variants."""
    value = os.environ.get("PYTEST_CURRENT_TEST", "")
    return value.split("::")[-1].split(" ")[0].split("[")[0] or "unknown"


def record(scenario: str, variant: str = "ci", **figures: Any) -> None:
    """Merge ``figures`` into ``scenarios[scenario][variant]`` (when a figures file is set)."""
    path = target()
    if path is None:
        return
    with _locked(path) as data:
        entry = data.setdefault("scenarios", {}).setdefault(scenario, {})
        entry[variant] = {
            **_round(figures),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
        }


def record_test(nodeid: str, outcome: str, seconds: float) -> None:
    """The outcome of one test of a reliability run (the plugin in tests/conftest.py calls it)."""
    path = target()
    if path is None:
        return
    with _locked(path) as data:
        data.setdefault("tests", {})[nodeid] = {
            "outcome": outcome,
            "seconds": round(seconds, 2),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
