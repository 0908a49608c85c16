"""Cron schedules read as crontab(5) reads them: every day-of-week form and the
day-of-month OR day-of-week rule, against fire times written out by hand.

Calendar used below: Wednesday 2 December 2026 is the start; Sunday is the 6th and 13th,
Friday the 4th, 11th, 18th and 25th, and 1 January 2027 is a Friday. New York is on EST
(UTC-5) throughout.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from publisher.config import cron
from tests.conftest import run_cli, write_config

NY = ZoneInfo("America/New_York")
START = datetime(2026, 12, 2, 0, 0, tzinfo=NY)  # a Wednesday


def fires(schedule: str, count: int, start: datetime = START, tz: str = "America/New_York") -> list[datetime]:
    trigger = cron.trigger(schedule, tz)
    out: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        out.append(fire)
        previous, now = fire, fire + timedelta(seconds=1)
    return out


def at(day: int, hour: int = 7, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


SUNDAYS = [at(6), at(13), at(20)]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 7 * * 0", SUNDAYS),
        ("0 7 * * 7", SUNDAYS),
        ("0 7 * * sun", SUNDAYS),
        ("0 7 * * SUN", SUNDAYS),
        ("30 8 * * 1-5", [at(2, 8, 30), at(3, 8, 30), at(4, 8, 30), at(7, 8, 30), at(8, 8, 30)]),
        ("30 8 * * mon-fri", [at(2, 8, 30), at(3, 8, 30), at(4, 8, 30), at(7, 8, 30), at(8, 8, 30)]),
        ("0 9 * * 1,3,5", [at(2, 9), at(4, 9), at(7, 9), at(9, 9)]),
        ("0 9 * * mon,wed,fri", [at(2, 9), at(4, 9), at(7, 9), at(9, 9)]),
        ("0 7 * * 0,6", [at(5), at(6), at(12), at(13)]),
        # '*' spans 0-7: every other day from Sunday is Sun, Tue, Thu, Sat.
        ("0 7 * * */2", [at(3), at(5), at(6), at(8), at(10)]),
        ("0 7 * * 1-5/2", [at(2), at(4), at(7), at(9)]),  # Mon, Wed, Fri
        ("0 7 * * 5-7", [at(4), at(5), at(6), at(11)]),  # Fri, Sat, Sun
        ("0 7 * * fri-sun", [at(4), at(5), at(6), at(11)]),
        ("0 7 * * 0-7", [at(2), at(3), at(4), at(5)]),
        ("0 7 * * *", [at(2), at(3), at(4), at(5)]),
    ],
)
def test_day_of_week_forms_follow_crontab(schedule: str, expected: list[datetime]) -> None:
    assert fires(schedule, len(expected)) == expected


def test_day_of_month_and_day_of_week_both_set_fire_on_either() -> None:
    # The 13th, and every Friday: crontab fires on either day.
    assert fires("0 7 13 * 5", 7) == [
        at(4), at(11), at(13), at(18), at(25), at(1, month=1, year=2027), at(8, month=1, year=2027),
    ]  # fmt: skip
    assert fires("0 7 1,15 * mon", 4) == [at(7), at(14), at(15), at(21)]


def test_a_field_starting_with_star_takes_no_part_in_the_or() -> None:
    # crontab: '*/2' in day-of-month is not "restricted", so both fields must match:
    # odd days of the month that are Fridays.
    assert fires("0 7 */2 * fri", 3) == [at(11), at(25), at(1, month=1, year=2027)]
    assert fires("0 7 13 * *", 2) == [at(13), at(13, month=1, year=2027)]


def test_time_zone_is_the_digests_own() -> None:
    [fire] = fires("0 7 * * 0", 1, tz="UTC", start=datetime(2026, 12, 2, tzinfo=ZoneInfo("UTC")))
    assert fire == datetime(2026, 12, 6, 7, 0, tzinfo=ZoneInfo("UTC"))
    [fire] = fires("0 7 * * 0", 1)
    assert fire.astimezone(ZoneInfo("UTC")) == datetime(2026, 12, 6, 12, 0, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("0 7 * * 8", "out of range (0-7"),
        ("0 7 * * 2-1", "runs backwards"),
        ("0 7 * * funday", "not a number, name, range or step"),
        ("0 7 * *", "expected 5 fields"),
        ("61 7 * * *", "maximum value (59)"),
    ],
)
def test_malformed_schedules_are_refused_with_the_reason(schedule: str, reason: str) -> None:
    with pytest.raises(cron.CronError, match=re.escape(reason)):
        cron.trigger(schedule, "UTC")


WEEKLY = (
    '[[digests]]\nid = "weekly"\ntitle = "Pleura Weekly"\nschedule = "{schedule}"\n'
    'timezone = "America/New_York"\nsubject = "{{title}}"\n'
)


def test_status_next_send_of_a_sunday_schedule_is_a_sunday(tmp_path: Path) -> None:
    # Wednesday 2 December 2026, 05:00 UTC. "0" and "7" are both Sunday, as in crontab.
    for schedule in ("0 7 * * 0", "0 7 * * 7"):
        config = write_config(tmp_path, digests=WEEKLY.format(schedule=schedule))
        run_cli(config, "db", "upgrade")
        result = run_cli(config, "status", "--json", now="2026-12-02T05:00:00+00:00")
        [digest] = json.loads(result.stdout)["digests"]
        assert datetime.fromisoformat(digest["next_fire_time"]) == at(6), schedule
        assert digest["current_period"] == "2026-W48"  # Sunday 29 November's week


def test_check_warns_about_a_numeric_day_of_week_and_still_passes(tmp_path: Path) -> None:
    schedule = WEEKLY.format(schedule="0 7 * * 1-5/2")
    config = write_config(tmp_path, digests=schedule)
    run_cli(config, "db", "upgrade")
    result = run_cli(config, "check", now="2026-12-02T05:00:00+00:00")
    [line] = [x for x in result.stdout.splitlines() if x.startswith("warn")]
    assert "weekly" in line and "numeric day of week '1-5/2'" in line
    assert "mon,wed,fri" in line and "CHANGELOG.md" in line
    assert result.stdout.splitlines()[-1].startswith("all checks passed")

    named = write_config(tmp_path, digests=WEEKLY.format(schedule="0 7 * * mon,wed,fri"))
    quiet = run_cli(named, "check", now="2026-12-02T05:00:00+00:00")
    assert not [x for x in quiet.stdout.splitlines() if x.startswith("warn")]
    assert "next 2026-12-02 07:00 America/New_York" in quiet.stdout


def test_check_warns_when_both_day_fields_are_set(tmp_path: Path) -> None:
    config = write_config(tmp_path, digests=WEEKLY.format(schedule="0 7 13 * fri"))
    run_cli(config, "db", "upgrade")
    result = run_cli(config, "check", now="2026-12-02T05:00:00+00:00")
    [line] = [x for x in result.stdout.splitlines() if x.startswith("warn")]
    assert "fires when either matches" in line


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 7 * * mon", None),
        ("0 7 * * fri-sun", None),
        ("0 7 13 * *", None),
        ("0 7 * * 0", "means sun; publisher 0.1 read it from Monday as mon"),
        ("0 7 * * 7", "means sun; publisher 0.1 refused it"),
        ("0 7 * * */2", "means sun,tue,thu,sat; publisher 0.1 read it from Monday as sun,mon,wed,fri"),
        ("0 7 * * mon-fri/2", "means mon,wed,fri; publisher 0.1 read it from Monday as mon,tue,wed,thu,fri"),
        ("0 7 * * 0-6", "the same days as in publisher 0.1"),
        ("0 7 1 * mon", "fires when either matches"),
    ],
)
def test_check_notes_say_what_moved(schedule: str, expected: str | None) -> None:
    note = cron.moved_by_translation(schedule)
    assert note is None if expected is None else expected in (note or "")
