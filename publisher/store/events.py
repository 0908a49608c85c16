"""Subscriber status changes as events (database I/O): recorded, and summed for charts.

Every store method that changes a subscriber's status calls :func:`record_change` (or
:func:`record_many`) on its own connection, so the event commits or rolls back with the
change. The charts never read the current rows: the number of subscribers in a status at
a moment is the number of events *into* that status minus the events *out of* it up to
then. :class:`SubscriberEventsMixin` sums them in SQL, grouped by status and by day, so
the cost is one aggregate over the events however many subscribers there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Date, Engine, cast, func, insert, select

from publisher.store.schema import deliveries, issues, subscriber_events, subscribers

# Why a status changed (the ``source`` column).
SOURCES = ("web", "cli", "api", "import", "bounce", "complaint", "erasure", "backfill")


def record_change(
    conn: Connection,
    subscriber_id: int,
    old: str | None,
    new: str,
    source: str,
    now: datetime,
    digest_id: str | None = None,
) -> None:
    """Record one change (nothing when the status stays the same) in ``conn``'s transaction."""
    if old == new and digest_id is None:
        return
    conn.execute(
        insert(subscriber_events).values(
            subscriber_id=subscriber_id,
            digest_id=digest_id,
            at=now,
            old_status=old,
            new_status=new,
            source=source[:20],
        )
    )


def record_many(
    conn: Connection, changes: Sequence[tuple[int, str | None, str]], source: str, now: datetime
) -> None:
    """Record ``(subscriber_id, old, new)`` changes with one executemany (bulk imports)."""
    rows = [
        {"subscriber_id": s, "digest_id": None, "at": now, "old_status": o, "new_status": n,
         "source": source}
        for s, o, n in changes
        if o != n
    ]  # fmt: skip
    if rows:
        conn.execute(insert(subscriber_events), rows)


def locked_status(conn: Connection, subscriber_id: int) -> str | None:
    """The subscriber's status, its row locked (PostgreSQL) until the transaction ends, so
    the ``old`` of the event recorded next is the status the change really replaced."""
    return conn.scalar(
        select(subscribers.c.status).where(subscribers.c.id == subscriber_id).with_for_update()
    )


def _day(conn: Connection, column: Any) -> Any:
    """The UTC calendar day of a stored (naive UTC) datetime, in the dialect's SQL."""
    return func.date(column) if conn.dialect.name == "sqlite" else cast(column, Date)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class SubscriberEventsMixin:
    """Reading the status events (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def status_counts_before(self, moment: datetime) -> dict[str, int]:
        """``{status: subscribers}`` just before ``moment`` (erased included), from events."""
        into = select(subscriber_events.c.new_status, func.count()).where(
            subscriber_events.c.at < moment, subscriber_events.c.digest_id.is_(None)
        )
        out = select(subscriber_events.c.old_status, func.count()).where(
            subscriber_events.c.at < moment,
            subscriber_events.c.digest_id.is_(None),
            subscriber_events.c.old_status.is_not(None),
        )
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for status, n in conn.execute(into.group_by(subscriber_events.c.new_status)):
                counts[status] = counts.get(status, 0) + int(n)
            for status, n in conn.execute(out.group_by(subscriber_events.c.old_status)):
                counts[status] = counts.get(status, 0) - int(n)
        return counts

    def status_changes_by_day(self, start: datetime, end: datetime) -> dict[date, dict[str, int]]:
        """``{day: {status: net change}}`` of the events in ``[start, end)``, by UTC day."""
        window = (
            subscriber_events.c.at >= start,
            subscriber_events.c.at < end,
            subscriber_events.c.digest_id.is_(None),
        )
        changes: dict[date, dict[str, int]] = {}
        with self.engine.connect() as conn:
            day = _day(conn, subscriber_events.c.at).label("day")
            for column, sign in ((subscriber_events.c.new_status, 1), (subscriber_events.c.old_status, -1)):
                rows = conn.execute(
                    select(day, column, func.count())
                    .where(*window, column.is_not(None))
                    .group_by(day, column)
                )
                for when, status, n in rows:
                    per_day = changes.setdefault(_as_date(when), {})
                    per_day[status] = per_day.get(status, 0) + sign * int(n)
        return changes

    def subscriber_events_of(self, subscriber_id: int) -> list[dict[str, Any]]:
        """A subscriber's status changes, oldest first (the console's detail page)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriber_events)
                .where(subscriber_events.c.subscriber_id == subscriber_id)
                .order_by(subscriber_events.c.id)
            )
            return [
                {
                    "at": r.at,
                    "digest_id": r.digest_id,
                    "old_status": r.old_status,
                    "new_status": r.new_status,
                    "source": r.source,
                }
                for r in rows
            ]

    def issue_delivery_counts(
        self, start: datetime, end: datetime
    ) -> list[tuple[int, datetime, dict[str, int]]]:
        """Issues created in ``[start, end)``: ``(id, created_at, {delivery status: n})``,
        counted in SQL (one grouped read of the ledger's claim index per issue)."""
        query = (
            select(issues.c.id, issues.c.created_at, deliveries.c.status, func.count(deliveries.c.id))
            .select_from(issues.outerjoin(deliveries, deliveries.c.issue_id == issues.c.id))
            .where(issues.c.created_at >= start, issues.c.created_at < end)
            .group_by(issues.c.id, issues.c.created_at, deliveries.c.status)
            .order_by(issues.c.id)
        )
        found: dict[int, tuple[int, datetime, dict[str, int]]] = {}
        with self.engine.connect() as conn:
            for issue_id, created_at, status, n in conn.execute(query):
                entry = found.setdefault(issue_id, (issue_id, created_at, {}))
                if status is not None:
                    entry[2][status] = int(n)
        return list(found.values())
