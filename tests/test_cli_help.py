"""``--help`` of every command reads whole in an 80-column terminal (issue 13): every option name,
its negative form and its environment variable appear uncut, and no internal type tag
(``<bool>``, ``<str>``) shows. The CLI as subprocesses, all at once."""

from __future__ import annotations

import os
import subprocess

import typer

from service.cli.app import app
from tests.conftest import routerisk_command

TAGS = ("<bool>", "<str>", "<float>", "<int>", "<path>")


def leaf_commands(command, path=()):
    """(path, command) of every command that runs (groups' subcommands, recursively)."""
    subcommands = getattr(command, "commands", {})
    if not subcommands:
        yield path, command
    for name, sub in subcommands.items():
        yield from leaf_commands(sub, (*path, name))


def names_of(command) -> list[str]:
    """The long option names and environment variables a reader must see whole."""
    names = [o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    for param in command.params:
        envvar = param.envvar
        names += [envvar] if isinstance(envvar, str) else list(envvar or ())
    return names


def _help(path: tuple[str, ...]) -> subprocess.Popen[str]:
    command = [*routerisk_command(), *path, "--help"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "80"})


def test_every_help_is_whole_at_80_columns_without_type_tags():
    commands = list(leaf_commands(typer.main.get_command(app)))
    assert len(commands) > 15
    env = {**os.environ, "COLUMNS": "80"}
    running = [
        (
            path,
            command,
            subprocess.Popen([*routerisk_command(), *path, "--help"], stdout=subprocess.PIPE, text=True, env=env),
        )
        for path, command in commands
    ]
    problems = []
    for path, command, process in running:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, path
        assert max(len(line) for line in out.splitlines()) <= 80, path
        cut = [name for name in names_of(command) if name not in out]
        tags = [tag for tag in TAGS if tag in out]
        if cut or tags:
            problems.append(f"{' '.join(path)}: cut {cut}, tags {tags}")
    assert not problems, problems


def test_values_are_labelled_in_click_words_and_flags_not_at_all():
    out = subprocess.run(
        [*routerisk_command(), "score", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
    ).stdout
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ --")}
    assert "FLOAT" in lines["--speed-kmh"] and "TEXT" in lines["--departure"]
    assert "standard|fast" in lines["--lane"]
    assert lines["--json"].split()[2] == "print"  # a flag: its help follows the name directly
