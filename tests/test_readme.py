"""Every command of the README runs as written (issue 13): its ```bash blocks are parsed here, so
the test cannot drift from the page.

Each block runs as one bash script (a block's commands share variables, as in a terminal) in a
scratch folder that holds the clone's ``examples/``, ``seeds/`` and ``.venv`` (this Python's), so
files the commands write land there; ``ROUTERISK_SERVER`` points them at a server of the test's
own (README command 1), and ``localhost:50051`` in a command is replaced by its address (and
``localhost:8080``, its HTTP port, by that port's). Every
command's exit code is checked: 0, or the N of an ``exit N`` its comment announces (a batch
file with a bad row on purpose exits 2).

Not run, each for a reason given in :data:`NOT_RUN`: README command 1 (the test starts the server
itself) and 2 (this suite), and the benchmarks (minutes long; they install PostGIS). A block whose
program is not installed here (grpcurl) is skipped, saying so.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers.cli import serve_subprocess

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_RUN = {
    "Two commands": "command 1 is the server this test starts; command 2 is this suite",
    "Benchmarks": "minutes long, installs PostGIS: bench has tests of its own",
}
EXPECTED_EXIT = re.compile(r"#.*\bexit (\d)\b")


@dataclass(frozen=True)
class Command:
    text: str
    expected: int


@dataclass(frozen=True)
class Block:
    heading: str
    index: int
    commands: tuple[Command, ...]

    @property
    def programs(self) -> set[str]:
        return {shlex.split(c.text, comments=True)[0] for c in self.commands if "=" not in c.text.split()[0]}


def readme_blocks(text: str) -> list[Block]:
    """The ```bash blocks, each under the heading it follows."""
    blocks, heading, count = [], "", 0
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("#"):
            heading, count = line.lstrip("#").strip(), 0
        elif line.strip() == "```bash":
            body = []
            for inner in lines:
                if inner.strip() == "```":
                    break
                body.append(inner)
            count += 1
            blocks.append(Block(heading, count, tuple(commands_of(body))))
    return blocks


def commands_of(lines: list[str]) -> list[Command]:
    """Commands of a block: a line ending in ``\\`` or inside an open quote goes on. A comment
    line saying ``exit N`` sets the expected exit code of the command after it."""
    out: list[Command] = []
    pending, expected = "", 0
    for line in lines:
        if not pending and line.lstrip().startswith("#"):
            found = EXPECTED_EXIT.search(line)
            expected = int(found[1]) if found else expected
            continue
        if not pending and not line.strip():
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\") or not _complete(pending):
            continue
        found = EXPECTED_EXIT.search(pending)
        out.append(Command(pending, int(found[1]) if found else expected))
        pending, expected = "", 0
    return out


def _complete(text: str) -> bool:
    """Whether a command's quotes are closed (an apostrophe in its comment does not count)."""
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def script_of(block: Block, address: str, http_address: str = "localhost:8080") -> str:
    """The block as a bash script that stops at the first command whose exit code is not the one expected."""
    parts = ["set -u -o pipefail"]
    for number, command in enumerate(block.commands, 1):
        text = command.text.replace("localhost:50051", address).replace("localhost:8080", http_address)
        parts += [
            text,
            f'rc=$?; if [ "$rc" -ne {command.expected} ]; then '
            f"echo {shlex.quote(f'command {number} exited with')} $rc, not {command.expected}: "
            f"{shlex.quote(command.text)} >&2; exit 99; fi",
        ]
    return "\n".join(parts) + "\n"


def test_the_readme_has_the_blocks_and_commands_this_test_expects():
    headings = {b.heading for b in BLOCKS}
    assert set(NOT_RUN) <= headings
    assert sum(len(b.commands) for b in BLOCKS if b.heading not in NOT_RUN) >= 30
    batch = [c for b in BLOCKS for c in b.commands if "score-batch" in c.text]
    assert [c.expected for c in batch] == [2, 2]


@pytest.fixture(scope="module")
def addresses(tmp_path_factory):
    """The server's gRPC address and its HTTP port's (issue 17: the curl examples)."""
    http_address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_HTTP_ADDRESS": http_address}
    with serve_subprocess(tmp_path_factory.mktemp("readme") / "server.log", env) as here:
        yield here, http_address


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch folder that looks like the clone after command 1."""
    here = tmp_path_factory.mktemp("clone")
    for name in ("examples", "seeds"):
        (here / name).symlink_to(ROOT / name)
    (here / ".venv").symlink_to(Path(sys.prefix))
    return here


RUN = [b for b in BLOCKS if b.heading not in NOT_RUN]
BUILTINS = {"export", "cd"}


@pytest.mark.parametrize("block", RUN, ids=[f"{b.heading}-{b.index}" for b in RUN])
def test_every_readme_command_runs_as_written(block, addresses, workdir):
    absent = [p for p in block.programs - BUILTINS if not p.startswith(".venv/") and shutil.which(p) is None]
    missing = sorted(absent)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed here")
    address, http_address = addresses
    env = {**os.environ, "ROUTERISK_SERVER": address}
    result = subprocess.run(
        ["bash", "-c", script_of(block, address, http_address)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
