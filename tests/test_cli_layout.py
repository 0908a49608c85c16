"""The CLI's layout: a lazy registry of command modules, and a `--help` that loads no SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from publisher.ops.cli import COMMANDS, cli, load_command


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=True
    )


def test_help_lists_every_registered_command_with_its_summary() -> None:
    out = _python("-m", "publisher", "--help").stdout
    listed = out.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == sorted(COMMANDS)
    assert "Database maintenance." in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_registry_entry_imports_a_click_command_of_that_name(name: str) -> None:
    command = load_command(name)
    assert isinstance(command, click.Command)
    assert command.name == name
    # The registry's summary is what click would list from the docstring at any width.
    assert COMMANDS[name].summary == command.get_short_help_str(10_000)
    assert cli.get_command(click.Context(cli), name) is command


def test_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "publisher", "sned"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "No such command 'sned'" in result.stderr


# `publisher --help` and every `publisher COMMAND --help` stay off SQLAlchemy (and the other
# heavy libraries the commands use): that is most of the start-up time.
_HEAVY = ("sqlalchemy", "premailer", "httpx")
_PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['publisher', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('publisher', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('HEAVY:', *sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n"
)


@pytest.mark.parametrize(
    "args", [[], *([name] for name in sorted(COMMANDS))], ids=lambda a: " ".join(a) or "root"
)
def test_help_imports_no_sqlalchemy(args: list[str]) -> None:
    probe = _PROBE.format(heavy=set(_HEAVY))
    out = _python("-c", probe, *args, "--help").stdout
    assert "Usage: publisher" in out
    assert out.splitlines()[-1] == "HEAVY:", out.splitlines()[-1]


def test_python_m_publisher_help_importtime_has_no_sqlalchemy() -> None:
    result = _python("-X", "importtime", "-m", "publisher", "--help")
    assert "Usage: publisher" in result.stdout
    assert "sqlalchemy" not in result.stderr
