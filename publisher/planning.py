"""When a digest is due and which articles its next issue holds (pure: takes ``now``).

A digest's *period* is its latest scheduled fire time at or before ``now``, in its own
time zone. The period key names the issue: the ISO week for a weekly schedule
(``2026-W48``), the local date for a once-a-day schedule (``2026-11-28``) and the local fire
time otherwise (``2026-11-28T08:00``). Because issues are unique per ``(digest, period)``,
two schedulers or a manual send racing the daemon still make one issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from publisher.config import DigestConfig
from publisher.models import Article

_MAX_LOOKBACK = timedelta(days=800)


@dataclass(frozen=True)
class Period:
    """One scheduled firing of a digest: its key and the fire time (aware, local zone)."""

    key: str
    fire_time: datetime


def trigger_for(digest: DigestConfig) -> CronTrigger:
    """The APScheduler trigger of a digest's cron schedule in its time zone."""
    return CronTrigger.from_crontab(digest.schedule, timezone=ZoneInfo(digest.timezone))


def _kind(schedule: str) -> str:
    minute, hour, dom, month, dow = schedule.split()
    single = all(part.isdigit() for part in (minute, hour))
    if single and dom == "*" and month == "*" and dow == "*":
        return "daily"
    if single and dom == "*" and month == "*" and dow not in ("*", "?") and "," not in dow:
        if "-" not in dow and "/" not in dow:
            return "weekly"
    return "other"


def period_key(digest: DigestConfig, fire_time: datetime) -> str:
    """The key of the period that starts at ``fire_time`` (see the module docstring)."""
    local = fire_time.astimezone(ZoneInfo(digest.timezone))
    kind = _kind(digest.schedule)
    if kind == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if kind == "daily":
        return local.date().isoformat()
    return local.strftime("%Y-%m-%dT%H:%M")


def latest_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest fire time at or before ``now`` (None if none in the last ~2 years)."""
    lookback = timedelta(hours=1)
    while lookback <= _MAX_LOOKBACK:
        fire = trigger.get_next_fire_time(None, now - lookback)
        if fire is not None and fire <= now:
            # Step forward to the last fire time that is still not after now.
            while True:
                following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
                if following is None or following > now:
                    return fire
                fire = following
        lookback *= 2
    return None


def current_period(digest: DigestConfig, now: datetime) -> Period | None:
    """The digest's period at ``now``: its latest scheduled fire time, or None."""
    fire = latest_fire_time(trigger_for(digest), now)
    return None if fire is None else Period(key=period_key(digest, fire), fire_time=fire)


def next_fire_time(digest: DigestConfig, now: datetime) -> datetime | None:
    """The next time the digest's schedule fires after ``now``."""
    return trigger_for(digest).get_next_fire_time(None, now + timedelta(seconds=1))


def select_articles(digest: DigestConfig, candidates: list[Article]) -> list[Article]:
    """The articles of the next issue: those matching the digest's tags, newest first, capped."""
    wanted = set(digest.tags)
    chosen = [a for a in candidates if not wanted or wanted.intersection(a.tags)]
    chosen.sort(key=lambda a: (a.published_at, a.id or 0), reverse=True)
    return chosen[: digest.max_articles]
