"""[feeds] settings: defaults, validation of bad values, and that each key is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from publisher import config
from publisher.errors import ConfigError
from tests.conftest import REPO

MINIMAL = '[site]\ntitle = "T"\nurl = "https://news.example.org"\n\n[feeds]\n'


def load_feeds(tmp_path: Path, body: str) -> config.FeedsConfig:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + body, encoding="utf-8")
    return config.load(path).feeds


def test_defaults(tmp_path: Path) -> None:
    feeds = load_feeds(tmp_path, "")
    assert (feeds.per_tag, feeds.per_author, feeds.archive) == (False, False, False)
    assert (feeds.ttl, feeds.archive_page_size, feeds.websub_hub) == (60, 50, "")
    assert feeds.websub_timeout == 10.0


def test_all_keys_load(tmp_path: Path) -> None:
    feeds = load_feeds(
        tmp_path,
        "per_author = true\narchive = true\narchive_page_size = 100\nttl = 30\n"
        'websub_hub = "https://hub.example.org/"\nwebsub_timeout = 3\n',
    )
    assert feeds.per_author and feeds.archive and feeds.archive_page_size == 100
    assert feeds.ttl == 30 and feeds.websub_hub == "https://hub.example.org/"
    assert feeds.websub_timeout == 3.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ttl = 0", "feeds.ttl: must be 1 to 10080"),
        ("ttl = 99999", "feeds.ttl: must be 1 to 10080"),
        ("archive_page_size = 0", "feeds.archive_page_size: must be 1 to 1000"),
        ("archive_page_size = 5000", "feeds.archive_page_size: must be 1 to 1000"),
        ('websub_hub = "ftp://hub.example.org"', "feeds.websub_hub: 'ftp://hub.example.org' is not an absolute http(s) URL"),
        ('websub_hub = "hub"', "feeds.websub_hub: 'hub' is not an absolute http(s) URL"),
        ("websub_timeout = 0", "feeds.websub_timeout: must be more than 0"),
        ('per_author = "yes"', "feeds.per_author: expected true or false, got 'yes'"),
        ('archive = 1', "feeds.archive: expected true or false, got 1"),
    ],
)  # fmt: skip
def test_bad_values_name_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_feeds(tmp_path, line + "\n")
    text = str(info.value)
    assert text.startswith("config.toml:6: ") and message in text
    assert "\n" not in text


def test_every_feeds_key_is_documented() -> None:
    shipped = (REPO / "config.toml").read_text(encoding="utf-8")
    section = shipped.split("[feeds]", 1)[1].split("\n[", 1)[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `[feeds]")]
    for f in dataclasses.fields(config.FeedsConfig):
        assert re.search(rf"^#? ?{f.name} = .*#", section, re.M), f"config.toml: {f.name}"
        assert any(f"`{f.name}`" in row or f" {f.name}`" in row for row in rows), (
            f"README: {f.name}"
        )
    config.load(REPO / "config.toml")
