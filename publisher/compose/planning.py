"""When a digest is due and which articles its next issue holds (pure: takes ``now``).

A digest's *period* is its latest scheduled fire time at or before ``now``, in its own
time zone. The period key names the issue: the ISO week for a weekly schedule
(``2026-W48``), the local date for a once-a-day schedule (``2026-11-28``) and the local fire
time otherwise (``2026-11-28T08:00``). Because issues are unique per ``(digest, period)``,
two schedulers or a manual send racing the daemon still make one issue.

Catch-up: when the daemon starts, a digest's current period is sent only if its fire time
is within the ``catch_up`` window (:func:`catch_up_period`); older missed periods are never
sent one by one. Cadence: a subscriber may take a digest ``every`` issue, ``daily`` or
``weekly``. A cadence coarser than the schedule gets a *roll-up* when the cadence period
closes (:func:`closing_fire`), keyed by :func:`cadence_key`. Quiet hours:
:func:`window_start` tells when a ``send_window`` next admits a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from publisher.config import DigestConfig, cron, parse_window
from publisher.models import Article

_MAX_LOOKBACK = timedelta(days=800)


@dataclass(frozen=True)
class Period:
    """One scheduled firing of a digest: its key and the fire time (aware, local zone)."""

    key: str
    fire_time: datetime


def trigger_for(digest: DigestConfig) -> BaseTrigger:
    """The APScheduler trigger of a digest's cron schedule in its time zone, read as
    crontab(5) reads it (see :mod:`publisher.config.cron`)."""
    return cron.trigger(digest.schedule, digest.timezone)


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


def latest_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
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


# -- catch-up ------------------------------------------------------------------------


def catch_up_period(digest: DigestConfig, now: datetime, window: timedelta) -> Period | None:
    """The period to send at daemon start-up: the latest one, if it fired within ``window``.

    Only the most recent missed period is ever considered, so a daemon that was down for
    a week sends at most one issue per digest, never one per missed period.
    """
    period = current_period(digest, now)
    if period is None or now - period.fire_time > window:
        return None
    return period


# -- per-subscriber cadence -----------------------------------------------------------

FREQUENCIES = ("every", "daily", "weekly")


def cadence_key(digest: DigestConfig, fire_time: datetime, frequency: str) -> str:
    """The cadence period holding ``fire_time``: the local date (daily) or ISO week (weekly)."""
    local = fire_time.astimezone(ZoneInfo(digest.timezone))
    if frequency == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if frequency == "daily":
        return local.date().isoformat()
    raise ValueError(f"frequency {frequency!r} has no cadence period")


def _cadence_start(digest: DigestConfig, fire_time: datetime, frequency: str) -> datetime:
    """Local midnight starting the cadence period (day, or Monday of the ISO week)."""
    tz = ZoneInfo(digest.timezone)
    day = fire_time.astimezone(tz).date()
    if frequency == "weekly":
        day -= timedelta(days=day.weekday())
    return datetime.combine(day, time(0, 0), tzinfo=tz)


def is_native(digest: DigestConfig, frequency: str, around: datetime, samples: int = 60) -> bool:
    """True when the schedule never fires twice in one cadence period (``every`` always is).

    Subscribers of a native cadence simply get every issue: a daily subscriber of a daily
    digest, or a daily subscriber of a weekly one. The check looks at ``samples`` fire times
    from ``around``, which covers every cron pattern that repeats within a year's pattern.
    """
    if frequency == "every":
        return True
    trigger = trigger_for(digest)
    previous = trigger.get_next_fire_time(None, around)
    keys: set[str] = set()
    for _ in range(samples):
        if previous is None:
            return True
        key = cadence_key(digest, previous, frequency)
        if key in keys:
            return False
        keys.add(key)
        previous = trigger.get_next_fire_time(previous, previous + timedelta(seconds=1))
    return True


def closing_fire(digest: DigestConfig, frequency: str, now: datetime) -> datetime | None:
    """The latest fire time at or before ``now`` that is the last of its cadence period.

    For a daily digest and a weekly cadence this is the Sunday fire: the issue of that
    period closes the subscriber's week, and their roll-up goes out with it.
    """
    trigger = trigger_for(digest)
    fire = latest_fire_time(trigger, now)
    if fire is None:
        return None
    following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    if following is None or cadence_key(digest, following, frequency) != cadence_key(
        digest, fire, frequency
    ):
        return fire
    start = _cadence_start(digest, fire, frequency)
    return latest_fire_time(trigger, start - timedelta(microseconds=1))


def rollup_period(cadence: str, frequency: str, cursor: int) -> str:
    """The period key of a roll-up issue: ``2026-W48 weekly since #3``.

    It names the cadence period and the issue the subscribers' cursor stood at, so two
    daemons building the same roll-up collide on ``(digest, period)``.
    """
    return f"{cadence} {frequency} since #{cursor}"


# -- quiet hours ----------------------------------------------------------------------


def window_start(window: str, tz_name: str, at: datetime) -> datetime:
    """``at`` if it is inside ``send_window`` (local to ``tz_name``), else when it next opens.

    ``""`` means no window. A window may wrap midnight (``"22:00-06:00"``).
    """
    if not window:
        return at
    start, end = parse_window(window)
    tz = ZoneInfo(tz_name)
    local = at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if inside:
        return at
    day = local.date() if minute < start else local.date() + timedelta(days=1)
    opens = datetime.combine(day, time(start // 60, start % 60), tzinfo=tz)
    return opens.astimezone(at.tzinfo)
