"""Subject lines through the real CLI: the ``{stories}`` field pluralises, and the shipped
config.toml uses it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO, run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"
ONE_DIGEST = (
    '[[digests]]\nid = "daily"\ntitle = "Pleura Daily"\nschedule = "0 7 * * *"\n'
    'timezone = "UTC"\nsubject = "{title}: {stories} ({count})"\n'
)


def _subject(config: Path) -> str:
    run_cli(config, "collect", now=NOW)
    out = run_cli(config, "preview", "daily", "--out", "p.html", now=NOW).stdout
    return out.split("subject ", 1)[1].rsplit(" -> ", 1)[0].strip("'\"")


def test_one_story_is_singular_and_more_are_plural(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    config = write_config(one, digests=ONE_DIGEST)
    for extra in sorted((one / "content").glob("*.md"))[1:]:
        extra.unlink()
    assert _subject(config) == "Pleura Daily: 1 new story (1)"

    three = tmp_path / "three"
    three.mkdir()
    config = write_config(three, digests=ONE_DIGEST)
    for extra in sorted((three / "content").glob("*.md"))[3:]:
        extra.unlink()
    assert _subject(config) == "Pleura Daily: 3 new stories (3)"


def test_the_shipped_config_pluralises_its_subject(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    shutil.copytree(REPO / "content", tmp_path / "content")
    assert "{stories}" in (tmp_path / "config.toml").read_text(encoding="utf-8")
    subject = _subject(tmp_path / "config.toml")
    count = len(list((tmp_path / "content").glob("*.md")))
    assert subject == f"Pleura Daily: {count} new stories, 28 November 2026"


def test_an_unknown_subject_field_names_the_fields(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=ONE_DIGEST.replace("{count}", "{storeis}"))
    result = run_cli(config, "status", check=False)
    assert result.returncode == 1
    assert "{stories}" in result.stderr and "'storeis'" in result.stderr
