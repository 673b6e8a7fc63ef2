"""The ``routerisk`` CLI as a subprocess."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port, routerisk_command, wait_serving


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


@contextlib.contextmanager
def serve_subprocess(log_path: Path, env: dict | None = None) -> Iterator[str]:
    """``routerisk serve`` of a test's own (one whose state the test may change); yields its address."""
    address = f"127.0.0.1:{free_port()}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=env)
        try:
            wait_serving(address)
            yield address
        finally:
            process.terminate()
            process.wait(timeout=60)
