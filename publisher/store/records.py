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

from sqlalchemy import Engine, or_, select

from publisher.store.rows import json_list
from publisher.store.schema import bounce_events, deliveries, issues, subscriptions


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
        """The subscriber's ``limit`` newest deliveries, newest first."""
        query = (
            select(
                deliveries.c.issue_id, issues.c.digest_id, issues.c.period, issues.c.subject,
                deliveries.c.status, deliveries.c.attempts, deliveries.c.last_reply,
                deliveries.c.next_attempt_at, deliveries.c.sent_at, deliveries.c.updated_at,
            )
            .join(issues, issues.c.id == deliveries.c.issue_id)
            .where(deliveries.c.subscriber_id == subscriber_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )  # fmt: skip
        with self.engine.connect() as conn:
            return [
                DeliveryRecord(**{**row._mapping, "last_reply": row.last_reply or ""})
                for row in conn.execute(query)
            ]

    def bounce_records(self, subscriber_id: int, email: str, limit: int = 100) -> list[BounceRecord]:
        """Bounce reports about the subscriber (by id, or by address for reports that came
        before the row existed), newest first."""
        query = (
            select(
                bounce_events.c.kind, bounce_events.c.status, bounce_events.c.diagnostic,
                bounce_events.c.occurred_at,
            )
            .where(or_(bounce_events.c.subscriber_id == subscriber_id, bounce_events.c.email == email))
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
