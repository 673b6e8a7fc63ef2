"""The ``routerisk`` CLI as a subprocess."""

from __future__ import annotations

import subprocess

from tests.conftest import routerisk_command


def run_cli(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*routerisk_command(), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
        env=env,
    )
