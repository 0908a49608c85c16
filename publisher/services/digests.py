"""What the API reports about digests and issues (store reads): next sends and statistics.

Plain functions the doors share: each digest with its next scheduled send and last issue;
an issue's delivery counts and its failures grouped by reply; a digest's totals. The
ledger is the source of truth for every number (nothing is counted in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from publisher.app import App
from publisher.compose import planning
from publisher.models import Issue
from publisher.services.issues import get_issue


@dataclass(frozen=True)
class DigestSummary:
    """One configured digest: its schedule, next send, last issue and active subscribers."""

    id: str
    title: str
    schedule: str
    timezone: str
    send_window: str
    next_send_at: datetime | None
    last_issue: Issue | None
    subscribers: int


@dataclass(frozen=True)
class IssueStats:
    """An issue's deliveries by status, the commonest failure replies, and when its first
    and last messages went out."""

    issue: Issue
    counts: dict[str, int]
    failures: list[tuple[str, int]]
    first_sent_at: datetime | None
    last_sent_at: datetime | None


def digest_summaries(app: App, now: datetime | None = None) -> list[DigestSummary]:
    """Every configured digest, in the file's order, as of ``now`` (default: the clock)."""
    now = now or app.clock()
    return [
        DigestSummary(
            id=d.id,
            title=d.title,
            schedule=d.schedule,
            timezone=d.timezone,
            send_window=d.send_window,
            next_send_at=planning.next_fire_time(d, now),
            last_issue=app.store.last_issue(d.id),
            subscribers=app.store.count_recipients(d.id),
        )
        for d in app.config.digests
    ]


def delivery_counts(app: App, issue_id: int) -> dict[str, int]:
    """An issue's deliveries by status (every status present, zero when none)."""
    return app.store.delivery_counts(issue_id)


def issue_stats(app: App, issue_id: int, failures: int = 10) -> IssueStats:
    """The statistics of one issue (PublisherError when unknown)."""
    issue = get_issue(app, issue_id)
    counts = delivery_counts(app, issue_id)
    first, last = app.store.sent_span(issue_id)
    return IssueStats(
        issue=issue,
        counts=counts,
        failures=app.store.failures(issue_id, failures),
        first_sent_at=first,
        last_sent_at=last,
    )


def digest_stats(app: App, digest_id: str) -> dict[str, Any]:
    """A digest's subscribers by status, issues by status and deliveries by status over
    all its issues (ConfigError naming the known digests when unknown)."""
    app.config.digest(digest_id)
    return app.store.digest_totals(digest_id)
