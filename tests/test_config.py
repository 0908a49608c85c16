"""Tests for publisher.config: loading, path resolution and the operator-facing errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from publisher import config
from publisher.errors import ConfigError

SHIPPED = Path(__file__).resolve().parent.parent / "config.toml"

MINIMAL = """\
[site]
title = "Test Site"
url = "https://news.example.org"
"""

WITH_DIGESTS = """\
[site]
title = "Test Site"
url = "https://news.example.org"

[[digests]]
id = "daily"
title = "Daily"
schedule = "0 7 * * *"
timezone = "America/New_York"

[[digests]]
id = "weekly"
title = "Weekly"
schedule = "0 8 * * mon"
timezone = "Europe/Paris"
"""


def write_toml(folder: Path, text: str, name: str = "config.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def load_error(folder: Path, text: str, name: str = "config.toml") -> str:
    with pytest.raises(ConfigError) as info:
        config.load(write_toml(folder, text, name))
    return str(info.value)


# --- the shipped file ------------------------------------------------------------------


def test_shipped_config_loads() -> None:
    cfg = config.load(SHIPPED)
    assert cfg.path == SHIPPED
    assert cfg.site.title == "Pleura Health News"
    assert cfg.site.url == "https://news.example.org"
    assert [d.id for d in cfg.digests] == ["daily", "research-weekly"]
    weekly = cfg.digest("research-weekly")
    assert weekly.timezone == "Europe/Paris"
    assert weekly.schedule == "0 8 * * mon"
    assert weekly.tags == ("research", "clinical-trials")
    assert weekly.max_articles == 15
    assert cfg.digest("daily").tags == ()
    assert [(s.name, s.type) for s in cfg.sources] == [("newsroom", "markdown")]
    assert cfg.feeds.formats == ("rss", "atom", "json")
    assert cfg.delivery.from_ == "newsletter@news.example.org"
    assert cfg.delivery.transport == "file"


def test_shipped_config_paths_resolve_against_its_folder() -> None:
    cfg = config.load(SHIPPED)
    root = SHIPPED.parent
    assert cfg.base_dir == root
    assert cfg.sources[0].path == root / "content"
    assert cfg.feeds.output_dir == root / "feeds"
    assert cfg.delivery.outbox_dir == root / "outbox"
    assert cfg.store_url == f"sqlite:///{root / 'publisher.db'}"


def test_relative_paths_do_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "pub"
    folder.mkdir(parents=True)
    copy = folder / "config.toml"
    shutil.copyfile(SHIPPED, copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    cfg = config.load(copy)

    base = folder.resolve()
    assert cfg.sources[0].path == base / "content"
    assert cfg.feeds.output_dir == base / "feeds"
    assert cfg.delivery.outbox_dir == base / "outbox"
    assert cfg.store_url == f"sqlite:///{base / 'publisher.db'}"


def test_unknown_digest_id_lists_the_known_ones() -> None:
    cfg = config.load(SHIPPED)
    with pytest.raises(ConfigError, match="daily, research-weekly"):
        cfg.digest("monthly")


# --- errors ------------------------------------------------------------------------------


def test_unknown_key_names_file_line_path_and_suggestion(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('schedule = "0 8 * * mon"', 'shedule = "0 8 * * mon"')
    message = load_error(tmp_path, text, "settings.toml")
    assert f"settings.toml:{line_of(text, 'shedule')}:" in message
    assert "digests[1].shedule" in message
    assert "did you mean 'schedule'" in message


def test_unknown_key_in_a_plain_table(tmp_path: Path) -> None:
    text = MINIMAL + '[delivery]\ntransport = "file"\nform = "a@example.org"\n'
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, 'form =')}: delivery.form" in message
    assert "did you mean 'from'" in message


def test_unknown_top_level_table(tmp_path: Path) -> None:
    text = MINIMAL + "\n[feed]\nlimit = 5\n"
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, '[feed]')}: feed" in message
    assert "unknown key 'feed'" in message
    assert "did you mean 'feeds'" in message


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    text = MINIMAL + '\n[feeds]\nlimit = "ten"\n'
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, 'limit')}: feeds.limit" in message
    assert "'ten'" in message
    assert "whole number" in message


def test_boolean_is_not_accepted_as_a_number(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('title = "Daily"', 'title = "Daily"\nmax_articles = true')
    message = load_error(tmp_path, text)
    assert "digests[0].max_articles" in message
    assert "True" in message


def test_string_where_a_list_is_expected(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('title = "Weekly"', 'title = "Weekly"\ntags = "research"')
    message = load_error(tmp_path, text)
    assert "digests[1].tags" in message
    assert "list of strings" in message


@pytest.mark.parametrize(
    "schedule",
    ["0 25 * * *", "every monday", "0 7 * * * *"],
)
def test_invalid_cron_expression(tmp_path: Path, schedule: str) -> None:
    text = WITH_DIGESTS.replace('"0 8 * * mon"', f'"{schedule}"')
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, 'schedule', 2)}: digests[1].schedule" in message
    assert repr(schedule) in message
    assert "not a valid cron expression" in message


def test_unknown_time_zone(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('"Europe/Paris"', '"Mars/Olympus_Mons"')
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, 'Mars')}: digests[1].timezone" in message
    assert "unknown time zone 'Mars/Olympus_Mons'" in message


def test_time_zone_naming_a_region_folder_is_a_config_error(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('"Europe/Paris"', '"Europe"')
    message = load_error(tmp_path, text)
    assert "digests[1].timezone" in message
    assert "unknown time zone 'Europe'" in message


def test_subject_with_unknown_field(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('title = "Daily"', 'title = "Daily"\nsubject = "{titel}"')
    message = load_error(tmp_path, text)
    assert "digests[0].subject" in message
    assert "'titel'" in message


@pytest.mark.parametrize("subject", ["{title}: {date.year}", "{count[0]}"])
def test_subject_with_attribute_access_is_a_config_error(tmp_path: Path, subject: str) -> None:
    text = WITH_DIGESTS.replace('title = "Daily"', f'title = "Daily"\nsubject = "{subject}"')
    message = load_error(tmp_path, text)
    assert "digests[0].subject" in message


def test_missing_site_table(tmp_path: Path) -> None:
    message = load_error(tmp_path, '[store]\nurl = "sqlite:///x.db"\n')
    assert message.startswith("config.toml:")
    assert "missing required table [site]" in message


def test_missing_required_key(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('id = "weekly"\n', "")
    message = load_error(tmp_path, text)
    assert "digests[1]" in message
    assert "missing required key 'id'" in message
    assert f"config.toml:{line_of(text, '[[digests]]', 2)}:" in message


def test_invalid_toml_syntax(tmp_path: Path) -> None:
    text = MINIMAL + "\n[feeds\nlimit = 5\n"
    message = load_error(tmp_path, text)
    assert "config.toml" in message
    assert "invalid TOML" in message
    assert f"line {line_of(text, '[feeds')}" in message


def test_missing_file_has_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "nope.toml")
    assert "config file not found" in str(info.value)
    assert info.value.hint is not None and "--config" in info.value.hint


def test_invalid_from_address(tmp_path: Path) -> None:
    text = MINIMAL + '\n[delivery]\nfrom = "not an address"\n'
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, 'from =')}: delivery.from" in message
    assert "'not an address'" in message


def test_invalid_reply_to_address(tmp_path: Path) -> None:
    text = MINIMAL + '\n[delivery]\nreply_to = "editor@example.org\\r\\nBcc: victim@example.org"\n'
    message = load_error(tmp_path, text)
    assert "delivery.reply_to" in message


def test_duplicate_digest_id(tmp_path: Path) -> None:
    text = WITH_DIGESTS.replace('id = "weekly"', 'id = "daily"')
    message = load_error(tmp_path, text)
    assert f"config.toml:{line_of(text, 'id = ', 2)}: digests[1].id" in message
    assert "duplicate digest id 'daily'" in message


def test_duplicate_source_name(tmp_path: Path) -> None:
    source = '\n[[sources]]\nname = "news"\npath = "content"\n'
    message = load_error(tmp_path, MINIMAL + source + source)
    assert "sources[1].name" in message
    assert "duplicate source name 'news'" in message


def test_site_url_must_be_absolute(tmp_path: Path) -> None:
    message = load_error(tmp_path, MINIMAL.replace("https://news.example.org", "news.example.org"))
    assert "site.url" in message
    assert "absolute http(s) URL" in message


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = config.load(write_toml(tmp_path, MINIMAL))
    assert cfg.digests == ()
    assert cfg.sources == ()
    assert cfg.feeds.limit == 20
    assert cfg.feeds.output_dir == tmp_path / "feeds"  # defaults resolve next to the config
    assert cfg.feeds_url == "http://127.0.0.1:8080/feeds/"


# --- store URL and secrets -----------------------------------------------------------


@pytest.mark.parametrize("relative", ["publisher.db", "data/app.db", "data/../app.db"])
def test_sqlite_relative_url_resolves_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: str
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write_toml(folder, MINIMAL + f'\n[store]\nurl = "sqlite:///{relative}"\n')

    cfg = config.load(path)

    assert cfg.store.url == f"sqlite:///{relative}"
    assert cfg.store_url == f"sqlite:///{(folder / relative).resolve()}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/publisher/app.db",
        "sqlite:///:memory:",
        "sqlite://",
        "postgresql+psycopg://user@localhost/publisher",
    ],
)
def test_other_store_urls_are_kept(tmp_path: Path, url: str) -> None:
    cfg = config.load(write_toml(tmp_path, MINIMAL + f'\n[store]\nurl = "{url}"\n'))
    assert cfg.store_url == url


def test_secret_from_env_reads_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_TEST_SECRET", "s3cret-value")
    assert config.secret_from_env("PUBLISHER_TEST_SECRET", what="[web] secret_env") == (
        "s3cret-value"
    )


def test_secret_from_env_unset_or_empty_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLISHER_TEST_SECRET", raising=False)
    assert config.secret_from_env("PUBLISHER_TEST_SECRET", what="x") is None
    monkeypatch.setenv("PUBLISHER_TEST_SECRET", "")
    assert config.secret_from_env("PUBLISHER_TEST_SECRET", what="x") is None
    assert config.secret_from_env("", what="x") is None


def test_default_path_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    assert config.default_path() == Path("config.toml")
    monkeypatch.setenv(config.CONFIG_ENV, "/etc/publisher/config.toml")
    assert config.default_path() == Path("/etc/publisher/config.toml")
