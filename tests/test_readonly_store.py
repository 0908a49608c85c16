"""A typo in ``[store] url``: commands that only read name the missing SQLite file and exit
1, creating neither the file nor its folders; commands that write still create it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
READ_ONLY = [
    ["status"],
    ["status", "--json"],
    ["issues", "list"],
    ["issues", "show", "1"],
    ["subscribers", "list"],
    ["subscribers", "export"],
    ["preview", "daily"],
    ["send", "daily", "--dry-run"],
]


def _typo_config(folder: Path) -> tuple[Path, Path]:
    missing = folder / "dta" / "publisher.db"  # meant: data/publisher.db
    return write_config(folder, store_url="sqlite:///dta/publisher.db"), missing


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_never_creates_the_database(tmp_path: Path, args: list[str]) -> None:
    config, missing = _typo_config(tmp_path)
    result = run_cli(config, *args, now=NOW, check=False)
    assert result.returncode == 1
    [error] = result.stderr.strip().splitlines()
    assert f"no database at {missing}" in error and "[store] url" in error
    assert not missing.parent.exists()  # neither the folder nor the file


def test_check_fails_the_store_line_and_creates_nothing(tmp_path: Path) -> None:
    config, missing = _typo_config(tmp_path)
    result = run_cli(config, "check", now=NOW, check=False)
    assert result.returncode == 1
    [line] = [x for x in result.stdout.splitlines() if x.split()[1:2] == ["store"]]
    assert line.startswith("FAIL") and f"no database at {missing}" in line
    assert not missing.parent.exists()


def test_a_writing_command_creates_it(tmp_path: Path) -> None:
    config, missing = _typo_config(tmp_path)
    run_cli(config, "collect", now=NOW)
    assert missing.is_file()
    assert "issue(s)" not in run_cli(config, "status", now=NOW).stderr
    assert run_cli(config, "issues", "list", now=NOW).stdout.strip().endswith("0 issue(s)")
