"""mypy is part of the suite, so a type error fails CI like any other defect.

What is checked and how strictly is in ``[tool.mypy]`` of ``pyproject.toml``: ``geodata/`` strict,
``service/`` with every function body checked, the generated stubs read but not checked.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_mypy_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
