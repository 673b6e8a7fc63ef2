"""Records each test's outcome into the reliability figures (only when a figures file is set)."""

from __future__ import annotations

import pytest

from tools.reliability.figures import record_test, target


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if target() is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        record_test(report.nodeid, report.outcome, report.duration)
