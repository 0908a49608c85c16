"""Periods and article selection, with pinned datetimes (no sleeping, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.config import DigestConfig
from publisher.models import Article
from publisher.planning import current_period, next_fire_time, select_articles


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
