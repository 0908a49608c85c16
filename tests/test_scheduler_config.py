"""The ``[schedule]`` table and the digest keys ``catch_up`` / ``send_window``: defaults,
validation errors with file, line and key, and documentation in README and config.toml."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.config import DigestConfig, ScheduleConfig, load
from publisher.errors import ConfigError
from publisher.ops.scheduler import DaemonSettings

REPO = Path(__file__).resolve().parent.parent
BASE = """
[site]
title = "T"
url = "https://news.example.org"

[[digests]]
id = "daily"
title = "Daily"
{digest}
{schedule}
"""


def _write(tmp_path: Path, digest: str = "", schedule: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(BASE.format(digest=digest, schedule=schedule), encoding="utf-8")
    return path


def test_schedule_defaults(tmp_path: Path) -> None:
    config = load(_write(tmp_path))
    assert config.schedule == ScheduleConfig("15m", "1h", "1d")
    settings = DaemonSettings.from_config(config)
    assert settings == DaemonSettings(timedelta(minutes=15), timedelta(hours=1), timedelta(days=1))
    assert settings.catch_up_for(config.digests[0]) == timedelta(days=1)


def test_schedule_values_and_per_digest_catch_up(tmp_path: Path) -> None:
    config = load(
        _write(
            tmp_path,
            digest='catch_up = "6h"\nsend_window = "07:00-20:00"',
            schedule='[schedule]\ncollect_every = "90s"\nmisfire_grace_time = "10m"\ncatch_up = "2d"',
        )
    )
    settings = DaemonSettings.from_config(config)
    assert settings.collect_every == timedelta(seconds=90)
    assert settings.misfire_grace == timedelta(minutes=10)
    assert settings.catch_up_for(config.digests[0]) == timedelta(hours=6)
    assert config.digests[0].send_window == "07:00-20:00"
    assert DaemonSettings.from_config(config, timedelta(seconds=5)).collect_every == timedelta(
        seconds=5
    )


@pytest.mark.parametrize(
    ("digest", "schedule", "expected"),
    [
        ("", '[schedule]\ncollect_every = "often"', "config.toml:11: schedule.collect_every: 'often' is not a duration"),
        ("", '[schedule]\ncollect_every = "0"', "config.toml:11: schedule.collect_every: must be at least 1s"),
        ("", '[schedule]\ncatch_up = "1 day"', "config.toml:11: schedule.catch_up: '1 day' is not a duration"),
        ("", '[schedule]\nmisfire_grace_time = 60', "schedule.misfire_grace_time: expected a string, got 60"),
        ("", '[schedule]\ncolect_every = "1m"', "unknown key 'colect_every' (did you mean 'collect_every'?)"),
        ('catch_up = "soon"', "", "config.toml:9: digests[0].catch_up: 'soon' is not a duration"),
        ('send_window = "7-20"', "", "config.toml:9: digests[0].send_window: '7-20' is not HH:MM-HH:MM"),
        ('send_window = "09:00-09:00"', "", "digests[0].send_window: '09:00-09:00' is empty"),
    ],
)  # fmt: skip
def test_schedule_errors_name_file_line_and_key(
    tmp_path: Path, digest: str, schedule: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(_write(tmp_path, digest, schedule))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_every_schedule_key_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shipped = (REPO / "config.toml").read_text(encoding="utf-8")
    keys = [f"[schedule] {f.name}" for f in dataclasses.fields(ScheduleConfig)]
    keys += [f"[[digests]] {name}" for name in ("catch_up", "send_window")]
    for key in keys:
        assert f"`{key}`" in readme, key
        assert key.split()[-1] in shipped, key
    assert "[schedule]" in shipped
    assert {f.name for f in dataclasses.fields(DigestConfig)} >= {"catch_up", "send_window"}
    load(REPO / "config.toml")  # the shipped file still loads
