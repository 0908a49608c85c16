"""What the console shows at a glance (store reads only): digests, sources, issue progress.

The dashboard and the issue pages of the console (and anything else that wants the same
view) read these instead of the store, so a number means the same on every page. Issue
progress counts every delivery that reached an end state (sent, failed, bounced,
skipped) against all the issue's deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from publisher.app import App
from publisher.compose import planning
from publisher.deliver import liveness
from publisher.models import Issue
from publisher.services import charts
from publisher.services.issues import get_issue

DONE_STATES = ("sent", "failed", "bounced", "skipped")


@dataclass(frozen=True)
class Progress:
    """An issue's deliveries by state, and how far the send is (0-100)."""

    issue: Issue
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Every delivery of the issue."""
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Deliveries in an end state."""
        return sum(self.counts.get(s, 0) for s in DONE_STATES)

    @property
    def percent(self) -> int:
        """Whole percent done; an issue with no deliveries is done when it is not open."""
        if not self.total:
            return 0 if self.issue.status in ("sending", "paused") else 100
        return self.done * 100 // self.total

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the progress endpoint."""
        return {
            "id": self.issue.id,
            "status": self.issue.status,
            "counts": dict(self.counts),
            "total": self.total,
            "done": self.done,
            "percent": self.percent,
        }


@dataclass(frozen=True)
class DigestRow:
    """A configured digest: its schedule, next fire time, send window and last issue."""

    id: str
    title: str
    schedule: str
    timezone: str
    send_window: str
    next_fire_at: datetime | None
    last_issue: Progress | None


@dataclass(frozen=True)
class SourceRow:
    """A configured source and its health as of its last run (never run: no row yet)."""

    name: str
    type: str
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str

    @property
    def healthy(self) -> bool:
        """No error at its last run."""
        return not self.last_error and self.consecutive_failures == 0


def progress(app: App, issue_id: int) -> Progress:
    """The issue and its delivery counts (a PublisherError when there is no such issue)."""
    issue = get_issue(app, issue_id)
    return Progress(issue, app.store.delivery_counts(issue_id))


def recent_issues(app: App, limit: int = 50, before_id: int | None = None) -> list[Progress]:
    """The newest issues of every digest with their progress, ``limit`` at most, older than
    issue ``before_id`` when given (the next page starts below the last id of this one)."""
    return [
        Progress(i, app.store.delivery_counts(i.id)) for i in app.store.issue_page(limit, before_id)
    ]


def failures(app: App, issue_id: int, limit: int = 20) -> list[tuple[str, int]]:
    """An issue's failed and bounced deliveries grouped by their last SMTP reply, most
    common first."""
    return app.store.failures(issue_id, limit)


def digests(app: App, now: datetime) -> list[DigestRow]:
    """Every configured digest with its next scheduled send and its last issue."""
    rows = []
    for digest in app.config.digests:
        last = app.store.last_issue(digest.id)
        rows.append(
            DigestRow(
                id=digest.id,
                title=digest.title,
                schedule=digest.schedule,
                timezone=digest.timezone,
                send_window=digest.send_window,
                next_fire_at=planning.next_fire_time(digest, now),
                last_issue=None
                if last is None
                else Progress(last, app.store.delivery_counts(last.id)),
            )
        )
    return rows


def sources(app: App) -> list[SourceRow]:
    """Every configured source with its health, in the config's order."""
    states = {s["source"]: s for s in app.store.source_states()}
    rows = []
    for source in app.config.sources:
        state = states.get(source.name, {})
        rows.append(
            SourceRow(
                name=source.name,
                type=source.type,
                last_success_at=state.get("last_success_at"),
                consecutive_failures=int(state.get("consecutive_failures") or 0),
                last_error=str(state.get("last_error") or ""),
            )
        )
    return rows


def workers_running(app: App) -> int:
    """How many sending processes (``publisher worker``, the daemon) may be running now:
    those alive, and those on other hosts whose liveness this host cannot judge."""
    states = liveness.worker_states(app.store).values()
    return sum(1 for _row, state in states if state in (liveness.ALIVE, liveness.UNKNOWN))


def chart_series(app: App, *, days: int = 90, weeks: int = 12) -> dict[str, Any]:
    """The dashboard's two history charts as uPlot-ready columns (x: unix seconds, UTC
    midnight): subscribers by status at the end of each of the last ``days`` days (from
    the status events), and per week of the last ``weeks`` the deliveries of that week's
    issues that were sent, failed and bounced (:mod:`publisher.services.charts`)."""
    now = app.clock()
    people = charts.subscriber_series(app, days=days, now=now)
    # A status nobody has ever had is left out, so the legend lists only real lines.
    shown = {s: v for s, v in people.counts.items() if any(v)} or {
        "active": people.counts["active"]
    }
    sends = charts.issue_series(app, weeks=weeks, now=now)
    return {
        "subscribers": {"x": [_stamp(d) for d in people.days], "series": shown},
        "issues": {
            "x": [_stamp(w) for w in sends.weeks],
            "series": dict(sends.counts),
            "issues": sends.issues,
        },
    }


def _stamp(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp())
