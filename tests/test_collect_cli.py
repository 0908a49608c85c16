"""``publisher collect`` through the real CLI: everything that can be collected is, and
the exit code says when a file was skipped or a source failed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import free_port, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
BROKEN = "---\ntitle: [unclosed\n---\nBody.\n"


def _dead_feed(port: int) -> str:
    return (
        f'\n[[sources]]\nname = "wire"\ntype = "feed"\nurl = "http://127.0.0.1:{port}/feed.xml"\n'
        "allow_private = true\ntimeout = 2\n"
    )


def test_a_skipped_file_stores_the_rest_then_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    good = len(list((tmp_path / "content").glob("*.md")))
    (tmp_path / "content" / "broken.md").write_text(BROKEN, encoding="utf-8")
    result = run_cli(config, "collect", now=NOW, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(f"collect   {good} new, 0 updated")
    assert "broken.md" in result.stderr and "front matter" in result.stderr
    status = run_cli(config, "status", "--json", now=NOW)
    assert f'"articles": {good}' in status.stdout

    (tmp_path / "content" / "broken.md").unlink()
    clean = run_cli(config, "collect", now=NOW)  # nothing skipped: 0 again
    assert clean.stdout.startswith(f"collect   0 new, 0 updated, {good} unchanged, 0 error(s)")


def test_a_failing_source_exits_1_on_every_run_not_only_the_first(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=_dead_feed(free_port()))
    good = len(list((tmp_path / "content").glob("*.md")))
    first = run_cli(config, "collect", now=NOW, check=False)
    assert first.returncode == 1
    assert first.stdout.startswith(f"collect   {good} new")  # the markdown source still ran
    assert "wire" in first.stderr
    # The second failure in a row is not repeated as an error line (the daemon's log stays
    # quiet), but the command still fails and says which source.
    second = run_cli(config, "collect", now=NOW, check=False)
    assert second.returncode == 1
    assert "failed    source(s) wire could not be read" in second.stderr
