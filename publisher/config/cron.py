"""Standard crontab(5) schedules as APScheduler 3.x triggers (pure: no clock, no I/O).

APScheduler 3's ``CronTrigger.from_crontab`` departs from crontab in two ways that move
schedules:

- it numbers the days of the week from Monday (0 is Monday, 7 is refused), where crontab
  counts 0 and 7 as Sunday;
- it fires only when day-of-month AND day-of-week match, where crontab fires when EITHER
  matches if both fields are restricted (neither starts with ``*``).

:func:`trigger` is the one translation every fire-time computation goes through (the daemon,
``send``, ``status``, ``check``, config validation). The day-of-week field is expanded with
crontab's rules (numbers 0-7, names, ranges, lists, steps) and handed over as day *names*,
which both libraries read alike. The other four fields mean the same in both and pass
through unchanged.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

# crontab numbering: index = the day's number (0 = Sunday); 7 is Sunday again.
_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_LOW, _HIGH = 0, 7
_TOKEN = re.compile(r"^(?P<start>\*|[a-z]{3}|\d+)(?:-(?P<end>[a-z]{3}|\d+))?(?:/(?P<step>\d+))?$")


class CronError(ValueError):
    """A schedule that is not a standard 5-field crontab expression."""


def _day_number(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if not _LOW <= number <= _HIGH:
            raise CronError(f"day of week {number} is out of range (0-7, 0 and 7 are Sunday)")
        return number
    if text in _NAMES:
        return _NAMES.index(text)
    raise CronError(f"unknown day of week {text!r} (use 0-7 or sun, mon, ... sat)")


def weekdays(field: str) -> tuple[str, ...]:
    """The days (``"sun"`` ... ``"sat"``, in that order) a crontab day-of-week field names.

    Follows crontab(5) as Vixie cron and cronie read it: 0 and 7 are Sunday; ``*`` spans
    0-7, so ``*/2`` is Sunday, Tuesday, Thursday, Saturday; ``N/S`` runs from N to 7; a
    range that ends on the name ``sun`` ends on day 7 (``fri-sun``).
    """
    days: set[int] = set()
    for part in field.lower().split(","):
        match = _TOKEN.match(part)
        if match is None:
            raise CronError(f"day of week {part!r} is not a number, name, range or step")
        start, end, step = match["start"], match["end"], match["step"]
        if start == "*":
            if end is not None:
                raise CronError(f"day of week {part!r}: '*' cannot start a range")
            first, last = _LOW, _HIGH
        else:
            first = _day_number(start)
            last = _day_number(end) if end is not None else (_HIGH if step else first)
            if end == "sun":
                last = _HIGH  # 'fri-sun' ends on Sunday the 7th, as APScheduler 3 read it too
        if first > last:
            raise CronError(f"day of week {part!r}: the range runs backwards")
        stride = int(step) if step is not None else 1
        if stride < 1:
            raise CronError(f"day of week {part!r}: the step must be at least 1")
        days.update(number % 7 for number in range(first, last + 1, stride))
    return tuple(_NAMES[number] for number in sorted(days))


def _restricted(field: str) -> bool:
    # crontab's rule: a field that starts with '*' (even '*/2') does not take part in the OR.
    return not field.startswith("*")


def _apscheduler_weekdays(field: str) -> str:
    days = weekdays(field)
    return "*" if len(days) == 7 else ",".join(days)


def trigger(schedule: str, timezone: str) -> BaseTrigger:
    """The APScheduler trigger that fires when crontab would fire ``schedule`` in ``timezone``.

    Raises :class:`CronError` (a ``ValueError``) with the reason for a malformed schedule.
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    minute, hour, dom, month, dow = fields
    zone = ZoneInfo(timezone)
    days = _apscheduler_weekdays(dow)

    def cron(day: str, day_of_week: str) -> CronTrigger:
        try:
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week,
                timezone=zone,
            )  # fmt: skip
        except ValueError as exc:
            raise CronError(str(exc)) from exc

    if _restricted(dom) and _restricted(dow):
        return OrTrigger([cron(dom, "*"), cron("*", days)])
    return cron(dom, days)


def _days_under_from_crontab(field: str) -> tuple[str, ...] | None:
    """The days APScheduler 3's own ``from_crontab`` read ``field`` as (None: refused)."""
    from datetime import datetime, timedelta

    try:
        plain = CronTrigger(day_of_week=field, hour=0, minute=0, timezone=ZoneInfo("UTC"))
    except ValueError:
        return None
    start = datetime(2026, 11, 29, tzinfo=ZoneInfo("UTC"))  # a Sunday
    days = {
        _NAMES[(fire.weekday() + 1) % 7]
        for offset in range(7)
        if (fire := plain.get_next_fire_time(None, start + timedelta(days=offset)))
        and fire < start + timedelta(days=7)
    }
    return tuple(name for name in _NAMES if name in days)


def moved_by_translation(schedule: str) -> str | None:
    """Why ``schedule`` deserves a second look since publisher 0.1, or None.

    publisher 0.1 handed schedules to ``from_crontab`` unchanged. ``publisher check`` shows
    this note when the day of week is written with numbers (whose meaning changed) or now
    means other days, and when both day fields are restricted (now either one fires).
    """
    fields = schedule.split()
    if len(fields) != 5:
        return None
    dom, dow = fields[2], fields[4]
    notes = []
    numeric = any(ch.isdigit() for ch in re.sub(r"/\d+", "", dow))
    now_days, before = weekdays(dow), _days_under_from_crontab(dow)
    if numeric or now_days != before:
        named = ",".join(now_days)
        what = "numeric day of week" if numeric else "day of week"
        if before is None:
            then = "publisher 0.1 refused it"
        elif before != now_days:
            then = f"publisher 0.1 read it from Monday as {','.join(before)}"
        else:
            then = "the same days as in publisher 0.1"
        notes.append(
            f"{what} {dow!r} follows crontab (0 and 7 are Sunday) and means {named}; {then} "
            f"(see CHANGELOG.md). Write day names ({named}) to say so explicitly"
        )
    if _restricted(dom) and _restricted(dow):
        notes.append(
            f"day of month {dom!r} and day of week {dow!r} are both set: it now fires when "
            "either matches, as crontab does (publisher 0.1 fired only when both matched)"
        )
    return "; ".join(notes) or None
