"""Retention: deleting old rows while keeping the counts (database I/O).

``publisher purge`` removes, for rows older than a cut-off:

- the delivery rows of finished issues (``sent`` or ``cancelled``, created before the
  cut-off): each batch's counts by status are added to ``issue_totals`` in the batch's own
  transaction, so the per-issue figures never change; an issue still ``sending`` or
  ``paused`` is never touched;
- audit log entries, webhook events whose deliveries are all final, and their attempts;
- failed-login records; and, whatever their age, expired console sessions and
  idempotency keys past their retention.

Every delete is a batch of at most ``batch`` rows by primary key in its own short
transaction: on PostgreSQL a sender working on another issue never waits on it, and no
lock is held across batches. ``dry_run`` counts what would go and deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)

from publisher.store.schema import deliveries, issue_totals, issues
from publisher.store.schema_doors import (
    audit_log,
    console_login_failures,
    console_sessions,
    idempotency_keys,
    webhook_attempts,
    webhook_deliveries,
    webhook_events,
)

FINISHED = ("sent", "cancelled")
HARD = and_(deliveries.c.status == "failed", deliveries.c.last_reply.like("5%"))


class RetentionMixin:
    """The purge (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def purge(
        self, before: datetime, now: datetime, *, idempotency_before: datetime,
        dry_run: bool = False, batch: int = 1000,
    ) -> dict[str, int]:  # fmt: skip
        """Delete what is older than ``before`` (see the module doc); return the number of
        rows per kind (``deliveries``, ``audit``, ``webhook_events``, ``webhook_attempts``,
        ``login_failures``, ``sessions``, ``idempotency_keys``) removed or, with
        ``dry_run``, that would be."""
        finished = select(issues.c.id).where(
            issues.c.status.in_(FINISHED), issues.c.created_at < before
        )
        settled = (
            ~select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.event_id == webhook_events.c.id,
                webhook_deliveries.c.status == "pending",
            )
            .exists()
        )
        plan: list[tuple[str, Table, Column[Any], Any]] = [
            ("audit", audit_log, audit_log.c.id, audit_log.c.at < before),
            ("webhook_attempts", webhook_attempts, webhook_attempts.c.id,
             webhook_attempts.c.at < before),
            ("webhook_events", webhook_events, webhook_events.c.id,
             and_(webhook_events.c.created_at < before, settled)),
            ("login_failures", console_login_failures, console_login_failures.c.id,
             console_login_failures.c.at < before),
            ("sessions", console_sessions, console_sessions.c.id, console_sessions.c.expires_at < now),
        ]  # fmt: skip
        removed = {"deliveries": self._purge_deliveries(finished, now, dry_run, batch)}
        for name, table, key, where in plan:
            if name == "webhook_events" and not dry_run:
                removed[name] = self._batched(table, key, where, batch, self._drop_event_rows)
            else:
                removed[name] = (
                    self._count(table, where)
                    if dry_run
                    else self._batched(table, key, where, batch)
                )
        stale = idempotency_keys.c.created_at < idempotency_before
        removed["idempotency_keys"] = self._count(idempotency_keys, stale)
        if not dry_run:
            with self.engine.begin() as conn:  # keyed by two columns; few rows (24 h of POSTs)
                conn.execute(delete(idempotency_keys).where(stale))
        return removed

    def _count(self, table: Table, where: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(table).where(where)) or 0)

    def _batched(
        self, table: Table, key: Column[Any], where: Any, batch: int,
        before_delete: Callable[[Connection, list[int]], None] | None = None,
    ) -> int:  # fmt: skip
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = list(conn.scalars(select(key).where(where).order_by(key).limit(batch)))
                if not ids:
                    return total
                if before_delete is not None:
                    before_delete(conn, ids)
                total += conn.execute(delete(table).where(key.in_(ids))).rowcount or 0

    @staticmethod
    def _drop_event_rows(conn: Connection, ids: list[int]) -> None:
        """An event's (final) delivery rows go with it."""
        conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.event_id.in_(ids)))

    def _purge_deliveries(self, finished: Any, now: datetime, dry_run: bool, batch: int) -> int:
        """Delete delivery rows of finished issues in batches, rolling their counts up."""
        where = deliveries.c.issue_id.in_(finished)
        if dry_run:
            return self._count(deliveries, where)
        total = 0
        while True:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(deliveries.c.id, deliveries.c.issue_id, deliveries.c.status,
                           HARD.label("hard"))
                    .where(where).order_by(deliveries.c.id).limit(batch)
                    .with_for_update()  # a concurrent requeue waits, then finds them gone
                ).all()  # fmt: skip
                if not rows:
                    return total
                counts: dict[int, dict[str, int]] = {}
                for row in rows:
                    mine = counts.setdefault(row.issue_id, dict.fromkeys(
                        ("sent", "failed", "bounced", "skipped", "hard"), 0))  # fmt: skip
                    if row.status in mine:
                        mine[row.status] += 1
                    mine["hard"] += int(bool(row.hard)) + int(row.status == "bounced")
                for issue_id, add in counts.items():
                    _add_totals(conn, issue_id, add, now)
                conn.execute(delete(deliveries).where(deliveries.c.id.in_([r.id for r in rows])))
                total += len(rows)


def _add_totals(conn: Connection, issue_id: int, add: dict[str, int], now: datetime) -> None:
    """Add ``add`` to the issue's rolled-up counts (the row is created the first time)."""
    done = conn.execute(
        update(issue_totals)
        .where(issue_totals.c.issue_id == issue_id)
        .values(rolled_at=now, **{k: getattr(issue_totals.c, k) + v for k, v in add.items()})
    ).rowcount
    if not done:
        conn.execute(insert(issue_totals).values(issue_id=issue_id, rolled_at=now, **add))
