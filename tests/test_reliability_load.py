"""Overload and soak, CI-sized (the long runs: ``python -m tools.reliability overload|soak``).

Both start ``routerisk serve`` as a subprocess on 127.0.0.1 and stop by themselves (bounded
in requests and seconds). Overload: the uncached capacity with ``ROUTERISK_MAX_CONCURRENT_RPCS``
callers is measured, then twice that rate is offered open loop; excess calls must get
RESOURCE_EXHAUSTED, accepted ones the same answers, and health must keep answering; the
latencies are recorded here and bounded by the long run (no timed assert in the suite).
Soak: mixed requests of every kind; resident memory, file
descriptors and threads of the server must stay flat."""

from __future__ import annotations

import pytest

from tools.reliability import checks
from tools.reliability.figures import record
from tools.reliability.load import run_overload, run_soak


@pytest.mark.slow
def test_twice_the_capacity_is_shed_quickly_and_health_answers(tmp_path):
    figures = run_overload(tmp_path, seconds=4.0)
    record("overload", "ci", **figures)
    checks.overload(figures, timed=False)  # latencies are recorded; the long run checks them


@pytest.mark.slow
def test_soak_of_mixed_requests_keeps_resources_flat(tmp_path):
    figures = run_soak(tmp_path, requests=5_000)
    record("soak", "ci", **figures)
    checks.soak(figures)
