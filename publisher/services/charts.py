"""The console's dashboard charts (store I/O): subscribers by status per day, issues per week.

Both series are columnar (one list of x values, one list per line or bar) because that is
what chart libraries such as uPlot draw without reshaping. Subscribers over time come from
the status events (:mod:`publisher.store.events`), never from the current rows, so a day's
figure is what the list really was at the end of that day. Days and weeks are UTC; a week
starts on Monday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from publisher.app import App

STATUSES = ("active", "pending", "unsubscribed", "bounced", "erased")
ISSUE_COUNTS = ("sent", "failed", "bounced")


@dataclass(frozen=True)
class SubscriberSeries:
    """Per UTC day, the number of subscribers in each status at the end of that day."""

    days: list[date]
    counts: dict[str, list[int]]  # status -> one figure per day

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"days": ["2026-12-01", ...], "counts": {"active": [...], ...}}``."""
        return {"days": [d.isoformat() for d in self.days], "counts": self.counts}


@dataclass(frozen=True)
class IssueSeries:
    """Per week (its Monday), the issues created and their deliveries sent, failed, bounced."""

    weeks: list[date]
    issues: list[int]
    counts: dict[str, list[int]]  # sent / failed / bounced -> one figure per week

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"weeks": [...], "issues": [...], "counts": {"sent": [...], ...}}``."""
        return {
            "weeks": [w.isoformat() for w in self.weeks],
            "issues": self.issues,
            "counts": self.counts,
        }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def subscriber_series(app: App, *, days: int = 90, now: datetime | None = None) -> SubscriberSeries:
    """The last ``days`` UTC days up to today (``now``, default the app's clock).

    Two aggregate reads: the counts before the first day, then each day's net changes.
    """
    if days < 1:
        raise ValueError("days must be 1 or more")
    today = (now or app.clock()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    running = app.store.status_counts_before(_midnight(first))
    changes = app.store.status_changes_by_day(_midnight(first), _midnight(today + timedelta(days=1)))
    statuses = list(STATUSES) + sorted(
        {s for s in running if s not in STATUSES}
        | {s for day in changes.values() for s in day if s not in STATUSES}
    )
    counts: dict[str, list[int]] = {s: [] for s in statuses}
    series_days = [first + timedelta(days=i) for i in range(days)]
    for day in series_days:
        for status, delta in changes.get(day, {}).items():
            running[status] = running.get(status, 0) + delta
        for status in statuses:
            counts[status].append(running.get(status, 0))
    return SubscriberSeries(series_days, counts)


def issue_series(app: App, *, weeks: int = 12, now: datetime | None = None) -> IssueSeries:
    """The last ``weeks`` weeks (Monday to Sunday, UTC) up to this one: how many issues
    were created each week and how many of their deliveries were sent, failed, bounced."""
    if weeks < 1:
        raise ValueError("weeks must be 1 or more")
    today = (now or app.clock()).astimezone(UTC).date()
    this_monday = today - timedelta(days=today.weekday())
    mondays = [this_monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    index = {monday: i for i, monday in enumerate(mondays)}
    issues = [0] * weeks
    counts = {name: [0] * weeks for name in ISSUE_COUNTS}
    found = app.store.issue_delivery_counts(
        _midnight(mondays[0]), _midnight(this_monday + timedelta(weeks=1))
    )
    for _, created_at, by_status in found:
        day = created_at.astimezone(UTC).date()
        i = index[day - timedelta(days=day.weekday())]
        issues[i] += 1
        for name in ISSUE_COUNTS:
            counts[name][i] += by_status.get(name, 0)
    return IssueSeries(mondays, issues, counts)
