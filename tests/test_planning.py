"""Periods and article selection, with pinned datetimes (no sleeping, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.compose.planning import current_period, next_fire_time, select_articles
from publisher.config import DigestConfig
from publisher.models import Article


def _digest(schedule: str, tz: str = "UTC", **kw) -> DigestConfig:
    return DigestConfig(id="d", title="D", schedule=schedule, timezone=tz, **kw)


def test_daily_period_is_the_local_date_of_the_latest_fire_time() -> None:
    digest = _digest("0 7 * * *", "America/New_York")
    before = current_period(digest, datetime(2026, 11, 28, 11, 59, tzinfo=UTC))  # 06:59 local
    after = current_period(digest, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # 07:00 local
    assert before is not None and after is not None
    assert before.key == "2026-11-27" and after.key == "2026-11-28"
    assert after.fire_time == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_weekly_period_is_the_iso_week() -> None:
    digest = _digest("0 8 * * mon", "Europe/Paris")
    period = current_period(digest, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))  # a Saturday
    assert period is not None and period.key == "2026-W48"
    assert period.fire_time == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_other_schedules_use_the_local_fire_time() -> None:
    digest = _digest("30 8,18 * * *", "Europe/Paris")
    period = current_period(digest, datetime(2026, 11, 28, 20, 0, tzinfo=UTC))
    assert period is not None and period.key == "2026-11-28T18:30"


def test_monthly_schedule_looks_back_far_enough() -> None:
    digest = _digest("0 9 1 * *")
    period = current_period(digest, datetime(2026, 11, 28, tzinfo=UTC))
    assert period is not None and period.key == "2026-11-01T09:00"


def test_daylight_saving_keeps_local_time() -> None:
    digest = _digest("0 8 * * *", "Europe/Paris")
    # Paris leaves summer time on 2026-10-25: 08:00 is 06:00 UTC before, 07:00 UTC after.
    before = next_fire_time(digest, datetime(2026, 10, 24, 0, 0, tzinfo=UTC))
    after = next_fire_time(digest, datetime(2026, 10, 26, 0, 0, tzinfo=UTC))
    assert before == datetime(2026, 10, 24, 6, 0, tzinfo=UTC)
    assert after == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def _article(i: int, tags: tuple[str, ...]) -> Article:
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=i)
    return Article(
        source="s", guid=str(i), title=str(i), url="https://x/", published_at=at, updated_at=at,
        content_html="", tags=tags, id=i,
    )  # fmt: skip


def test_select_articles_filters_tags_caps_and_orders_newest_first() -> None:
    candidates = [_article(i, ("research",) if i % 2 else ("asbestos",)) for i in range(10)]
    chosen = select_articles(_digest("0 7 * * *", tags=("research",), max_articles=3), candidates)
    assert [a.id for a in chosen] == [9, 7, 5]
    assert len(select_articles(_digest("0 7 * * *", max_articles=20), candidates)) == 10


# -- daylight saving, with the trigger's own get_next_fire_time and pinned datetimes ------

from publisher.compose.planning import (  # noqa: E402
    cadence_key,
    catch_up_period,
    closing_fire,
    is_native,
    period_key,
    rollup_period,
    trigger_for,
    window_start,
)
from publisher.config import ConfigError, parse_duration, parse_window  # noqa: E402


def test_spring_forward_keeps_0800_paris_on_both_sides() -> None:
    digest = _digest("0 8 * * *", "Europe/Paris")
    trigger = trigger_for(digest)
    # Paris moves to summer time on 2026-03-29 at 02:00 (UTC+1 -> UTC+2).
    before = trigger.get_next_fire_time(None, datetime(2026, 3, 28, 0, 0, tzinfo=UTC))
    after = trigger.get_next_fire_time(before, datetime(2026, 3, 29, 0, 0, tzinfo=UTC))
    assert before == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert after == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert period_key(digest, after) == "2026-03-29"


def test_0230_on_the_spring_forward_night_fires_once() -> None:
    # 02:30 does not exist in Paris on 2026-03-29. APScheduler 3.x fires once, at the
    # wall-clock time normalised forward (01:30 UTC = 03:30 CEST), and never twice.
    digest = _digest("30 2 * * *", "Europe/Paris")
    trigger = trigger_for(digest)
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    fires = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < datetime(2026, 3, 30, 12, 0, tzinfo=UTC):
        fires.append(fire.astimezone(UTC))  # compare instants: == across zones ignores fold
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert fires == [
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST the next night
    ]
    assert [period_key(digest, f) for f in fires] == ["2026-03-29", "2026-03-30"]


def test_0230_on_the_fall_back_night_fires_twice_but_makes_one_period() -> None:
    # 02:30 happens twice in Paris on 2026-10-25; APScheduler fires at both. The period
    # key is the local date, so both firings name the same issue: one issue is sent.
    digest = _digest("30 2 * * *", "Europe/Paris")
    trigger = trigger_for(digest)
    first = trigger.get_next_fire_time(None, datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert second.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert period_key(digest, first) == period_key(digest, second) == "2026-10-25"
    twice_daily = _digest("30 2,14 * * *", "Europe/Paris")
    assert period_key(twice_daily, first) == period_key(twice_daily, second) == "2026-10-25T02:30"


def test_weekly_period_spans_the_dst_change() -> None:
    digest = _digest("0 8 * * mon", "Europe/Paris")
    # Monday 2026-10-26, the day after the change: 08:00 CET is 07:00 UTC.
    period = current_period(digest, datetime(2026, 10, 27, 12, 0, tzinfo=UTC))
    assert period is not None
    assert period.key == "2026-W44"
    assert period.fire_time == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


# -- catch-up ---------------------------------------------------------------------------


def test_catch_up_sends_only_the_latest_period_within_the_window() -> None:
    digest = _digest("0 7 * * *")
    # Down for three days: only today's 07:00 period is considered, never one per day.
    now = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    period = catch_up_period(digest, now, timedelta(days=1))
    assert period is not None and period.key == "2026-11-28"
    assert catch_up_period(digest, now, timedelta(hours=8)) is not None  # exactly 8 h old
    assert catch_up_period(digest, now, timedelta(hours=7)) is None
    weekly = _digest("0 8 * * mon")
    assert catch_up_period(weekly, now, timedelta(days=1)) is None  # Monday was 5 days ago
    assert catch_up_period(weekly, now, timedelta(days=7)).key == "2026-W48"  # type: ignore[union-attr]


def test_next_fire_time_is_strictly_after_now() -> None:
    digest = _digest("0 7 * * *")
    at_fire = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert next_fire_time(digest, at_fire) == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)


# -- cadence ----------------------------------------------------------------------------


def test_cadence_keys_and_native_cadences() -> None:
    daily = _digest("0 7 * * *", "America/New_York")
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # Sunday 07:00 New York
    assert cadence_key(daily, at, "weekly") == "2026-W48"
    assert cadence_key(daily, at, "daily") == "2026-11-29"
    assert is_native(daily, "daily", at) and not is_native(daily, "weekly", at)
    weekly = _digest("0 8 * * mon")
    assert is_native(weekly, "daily", at) and is_native(weekly, "weekly", at)
    twice = _digest("0 8,18 * * *")
    assert not is_native(twice, "daily", at)
    assert rollup_period("2026-W48", "weekly", 3) == "2026-W48 weekly since #3"


def test_closing_fire_of_a_week_is_the_sunday_issue() -> None:
    daily = _digest("0 7 * * *")
    sunday_fire = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    # Before Sunday's fire the last closed week is W47 (its Sunday, 2026-11-22).
    assert closing_fire(daily, "weekly", datetime(2026, 11, 29, 6, 59, tzinfo=UTC)) == datetime(
        2026, 11, 22, 7, 0, tzinfo=UTC
    )
    assert closing_fire(daily, "weekly", sunday_fire) == sunday_fire
    assert closing_fire(daily, "weekly", datetime(2026, 12, 2, tzinfo=UTC)) == sunday_fire
    twice = _digest("0 8,18 * * *")
    assert closing_fire(twice, "daily", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)) == datetime(
        2026, 11, 27, 18, 0, tzinfo=UTC
    )


# -- quiet hours and durations ----------------------------------------------------------


def test_send_window_holds_deliveries_until_it_opens() -> None:
    inside = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # 13:00 Paris
    assert window_start("07:00-20:00", "Europe/Paris", inside) == inside
    assert window_start("", "Europe/Paris", inside) == inside
    late = datetime(2026, 11, 28, 21, 30, tzinfo=UTC)  # 22:30 Paris
    assert window_start("07:00-20:00", "Europe/Paris", late) == datetime(
        2026, 11, 29, 6, 0, tzinfo=UTC
    )
    early = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 05:00 Paris
    assert window_start("07:00-20:00", "Europe/Paris", early) == datetime(
        2026, 11, 28, 6, 0, tzinfo=UTC
    )
    # A window across midnight.
    assert window_start("22:00-06:00", "UTC", late) == datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    night = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert window_start("22:00-06:00", "UTC", night) == night
    assert window_start("22:00-06:00", "UTC", inside) == datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def test_durations_and_windows_parse_or_fail_with_one_line() -> None:
    assert [parse_duration(v) for v in ("90s", "15m", "2h", "1d", "1w", "0")] == [
        90, 900, 7200, 86400, 604800, 0
    ]  # fmt: skip
    assert parse_window("07:00-20:00") == (420, 1200)
    for bad in ("15", "15 minutes", "-1m", "1.5h"):
        try:
            parse_duration(bad, "x")
        except ConfigError as exc:
            assert "is not a duration" in str(exc)
        else:
            raise AssertionError(bad)
    for bad in ("7-20", "25:00-26:00", "08:00-08:00"):
        try:
            parse_window(bad, "w")
        except ConfigError as exc:
            assert str(exc).startswith("w: ")
        else:
            raise AssertionError(bad)
