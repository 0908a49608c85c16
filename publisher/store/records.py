"""One subscriber's records in the store (database I/O): deliveries, bounces, subscriptions.

What the console's subscriber page and its CSV export read: a subscriber's deliveries with
the issue, the state, the last SMTP reply and the times; their bounce reports; and the
subscriptions of a page of subscribers in one query (the export walks the directory's
keyset pages, so it streams a list of any size at a constant cost per page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from publisher.store.rows import json_list
from publisher.store.schema import bounce_events, deliveries, issues, subscriptions

_ISSUES = 500  # issues looked up per query of a subscriber's history


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery to a subscriber: which issue, its state, attempts, reply and times."""

    issue_id: int
    digest_id: str
    period: str
    subject: str
    status: str
    attempts: int
    last_reply: str
    next_attempt_at: datetime
    sent_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class BounceRecord:
    """One bounce report about a subscriber's address."""

    kind: str
    status: str
    diagnostic: str
    occurred_at: datetime


class RecordsMixin:
    """Reading one subscriber's records (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def delivery_records(self, subscriber_id: int, limit: int = 200) -> list[DeliveryRecord]:
        """The subscriber's ``limit`` newest deliveries (by issue), newest first.

        The ledger has no index by subscriber alone (it would slow the planning of every
        issue), so the issues are walked from the newest down, a chunk at a time, and the
        subscriber's row of each is looked up on the unique (issue, subscriber) index:
        never a scan of the ledger, however long it is.
        """
        found: list[DeliveryRecord] = []
        before: int | None = None
        with self.engine.connect() as conn:
            while len(found) < limit:
                query = select(issues.c.id, issues.c.digest_id, issues.c.period, issues.c.subject)
                if before is not None:
                    query = query.where(issues.c.id < before)
                chunk = {r.id: r for r in conn.execute(query.order_by(issues.c.id.desc()).limit(_ISSUES))}
                if not chunk:
                    break
                before = min(chunk)
                rows = conn.execute(
                    select(
                        deliveries.c.issue_id, deliveries.c.status, deliveries.c.attempts,
                        deliveries.c.last_reply, deliveries.c.next_attempt_at,
                        deliveries.c.sent_at, deliveries.c.updated_at,
                    ).where(deliveries.c.subscriber_id == subscriber_id,
                            deliveries.c.issue_id.in_(list(chunk)))
                ).all()  # fmt: skip
                for row in sorted(rows, key=lambda r: -r.issue_id):
                    issue = chunk[row.issue_id]
                    found.append(DeliveryRecord(
                        issue_id=row.issue_id, digest_id=issue.digest_id, period=issue.period,
                        subject=issue.subject, status=row.status, attempts=row.attempts,
                        last_reply=row.last_reply or "", next_attempt_at=row.next_attempt_at,
                        sent_at=row.sent_at, updated_at=row.updated_at,
                    ))  # fmt: skip
        return found[:limit]

    def bounce_records(self, email: str, limit: int = 100) -> list[BounceRecord]:
        """Bounce reports about an address, newest first (on ``ix_bounce_events_email``;
        erasure gives a subscriber's reports the row's placeholder address)."""
        query = (
            select(
                bounce_events.c.kind, bounce_events.c.status, bounce_events.c.diagnostic,
                bounce_events.c.occurred_at,
            )
            .where(bounce_events.c.email == email)
            .order_by(bounce_events.c.occurred_at.desc(), bounce_events.c.id.desc())
            .limit(limit)
        )  # fmt: skip
        with self.engine.connect() as conn:
            return [BounceRecord(**row._mapping) for row in conn.execute(query)]

    def subscriptions_of(self, subscriber_ids: Sequence[int]) -> dict[int, list[tuple[str, str, list[str]]]]:
        """``(digest, frequency, topics)`` of each subscriber of a page, by digest (one query)."""
        found: dict[int, list[tuple[str, str, list[str]]]] = {i: [] for i in subscriber_ids}
        if not subscriber_ids:
            return found
        query = (
            select(
                subscriptions.c.subscriber_id, subscriptions.c.digest_id,
                subscriptions.c.frequency, subscriptions.c.tags,
            )
            .where(subscriptions.c.subscriber_id.in_(list(subscriber_ids)))
            .order_by(subscriptions.c.subscriber_id, subscriptions.c.digest_id)
        )  # fmt: skip
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                found[row.subscriber_id].append((row.digest_id, row.frequency, json_list(row.tags)))
        return found
