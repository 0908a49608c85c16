"""Provider feedback in the store (database I/O): bounce and complaint events from
provider webhooks and ARF reports, each stored once, and the figures drawn from them.

A provider may deliver an event several times; (provider, event id) is unique, so the
second delivery finds the first and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store.schema import deliveries, provider_events


@dataclass(frozen=True)
class ProviderEventRow:
    """One stored provider event, as :meth:`FeedbackMixin.record_provider_event` writes it."""

    provider: str
    event_id: str
    kind: str  # bounce, complaint
    email: str
    issue_id: int | None
    subscriber_id: int | None
    status: str
    detail: str
    occurred_at: datetime


def forget_provider_events(conn: Connection, subscriber_id: int, email: str, placeholder: str) -> None:
    """Erasure: a subscriber's provider events keep their counts, not the address."""
    conn.execute(
        update(provider_events)
        .where(or_(provider_events.c.subscriber_id == subscriber_id, provider_events.c.email == email))
        .values(email=placeholder, detail="")
    )


class FeedbackMixin:
    """Provider events (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def record_provider_event(self, row: ProviderEventRow, now: datetime) -> bool:
        """Store one event; False (and nothing written) when it was stored before."""
        values = {
            "provider": row.provider, "event_id": row.event_id[:200], "kind": row.kind,
            "email": row.email[:320], "issue_id": row.issue_id, "subscriber_id": row.subscriber_id,
            "status": row.status[:20], "detail": row.detail[:2000],
            "occurred_at": row.occurred_at, "received_at": now,
        }  # fmt: skip
        key = and_(
            provider_events.c.provider == row.provider,
            provider_events.c.event_id == values["event_id"],
        )
        try:
            with self.engine.begin() as conn:
                if conn.scalar(select(exists().where(key))):
                    return False
                conn.execute(insert(provider_events).values(**values))
        except IntegrityError:  # the same event, delivered twice at once: one insert won
            return False
        return True

    def was_delivered(self, issue_id: int, subscriber_id: int) -> bool:
        """Whether the ledger has a row for (issue, subscriber): a Message-ID check."""
        with self.engine.connect() as conn:
            return bool(
                conn.scalar(
                    select(exists().where(
                        deliveries.c.issue_id == issue_id,
                        deliveries.c.subscriber_id == subscriber_id,
                    ))
                )
            )  # fmt: skip

    def last_issue_sent_to(self, subscriber_id: int, before: datetime) -> int | None:
        """The issue most recently sent to a subscriber before ``before`` (None if none):
        the issue an event without our Message-ID is about."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(deliveries.c.issue_id)
                .where(
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == "sent",
                    deliveries.c.sent_at <= before,
                )
                .order_by(deliveries.c.sent_at.desc(), deliveries.c.id.desc())
                .limit(1)
            )

    def issue_complaints(self, issue_id: int, since: datetime, until: datetime) -> int:
        """Complaints about an issue that occurred in [since, until]: with ``since`` its
        send and ``until`` a week later, the complaints that count against it."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(provider_events)
                    .where(
                        provider_events.c.issue_id == issue_id,
                        provider_events.c.kind == "complaint",
                        provider_events.c.occurred_at >= since,
                        provider_events.c.occurred_at <= until,
                    )
                )
                or 0
            )

    def provider_events_of(self, email: str) -> list[ProviderEventRow]:
        """Every stored event about an address, oldest first (tests, export)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(provider_events)
                .where(provider_events.c.email == email)
                .order_by(provider_events.c.id)
            ).all()
        return [
            ProviderEventRow(
                r.provider, r.event_id, r.kind, r.email, r.issue_id, r.subscriber_id,
                r.status, r.detail, r.occurred_at,
            )
            for r in rows
        ]  # fmt: skip
