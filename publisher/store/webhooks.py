"""Outgoing webhooks in the store (database I/O): the event outbox, claims, hook state.

Events are written by :func:`publisher.store.outbox.emit` in the transaction of what
caused them; this module hands them to the dispatchers and keeps each hook's state.

Dispatchers claim due deliveries under a lease (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite's write lock serialises the claim), POST them outside any transaction,
then record the attempt *fenced* by the attempt number they claimed: two processes never
send one event at once, and a result arriving after a takeover changes nothing. A crash
between the POST and the record sends that event again once its lease expires, with the
same event id, which receivers use to drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, func, insert, or_, select, update

from publisher.models import AuditEntry
from publisher.store.audit import insert_audit
from publisher.store.outbox import Routes
from publisher.store.schema import (
    webhook_attempts,
    webhook_deliveries,
    webhook_events,
    webhook_hooks,
)


@dataclass(frozen=True)
class WebhookClaim:
    """One event claimed for one hook: what to POST, and the attempt it will be."""

    delivery_id: int
    hook: str
    attempt: int
    event_id: str
    event_type: str
    data: str  # the event's data, as stored JSON
    created_at: datetime


@dataclass(frozen=True)
class AttemptResult:
    """What one POST came to: a status code (None when no answer), an error, the time."""

    ok: bool
    status_code: int | None
    error: str
    duration_ms: int


class WebhooksMixin:
    """The outbox, claims and hook state (mixed into :class:`publisher.store.Store`)."""

    engine: Engine
    # Set by the App from [[webhooks]]; empty: no event is written.
    webhook_routes: Routes = {}

    def sync_webhooks(self, hooks: Sequence[tuple[str, str]]) -> None:
        """Make sure each configured ``(name, url)`` has a state row (on by default); the
        pending events of hooks no longer configured are dropped."""
        names = [name for name, _ in hooks]
        with self.engine.begin() as conn:
            known = dict(conn.execute(select(webhook_hooks.c.name, webhook_hooks.c.url)).all())
            for name, url in hooks:
                if name not in known:
                    conn.execute(
                        insert(webhook_hooks).values(
                            name=name, url=url, enabled=1, failures=0, last_error=""
                        )
                    )
                elif known[name] != url:
                    conn.execute(
                        update(webhook_hooks).where(webhook_hooks.c.name == name).values(url=url)
                    )
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.status == "pending", webhook_deliveries.c.hook.not_in(names))
                .values(status="dropped", last_error="hook no longer configured")
            )

    def claim_webhooks(
        self, names: Sequence[str], now: datetime, lease: timedelta, limit: int = 100
    ) -> list[WebhookClaim]:
        """Claim up to ``limit`` due deliveries of the hooks ``names`` that are on."""
        enabled = select(webhook_hooks.c.name).where(
            webhook_hooks.c.enabled == 1, webhook_hooks.c.name.in_(list(names))
        )
        d, e = webhook_deliveries, webhook_events
        query = (
            select(d.c.id, d.c.hook, d.c.attempts, e.c.event_id, e.c.type, e.c.data, e.c.created_at)
            .join(e, e.c.id == d.c.event_id)
            .where(
                d.c.status == "pending",
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                d.c.hook.in_(enabled),
            )
            .order_by(d.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=d)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(d)
                    .where(d.c.id.in_([r.id for r in rows]))
                    .values(attempts=d.c.attempts + 1, lease_until=now + lease, updated_at=now)
                )
        return [
            WebhookClaim(r.id, r.hook, r.attempts + 1, r.event_id, r.type, r.data, r.created_at)
            for r in rows
        ]

    def release_webhooks(
        self,
        claims: Sequence[WebhookClaim],
        now: datetime,
        *,
        until: datetime | None = None,
        hooks: Sequence[str] = (),
    ) -> None:
        """Give back claims not tried (their attempt is not counted). With ``until`` (their
        hook just failed), they and every other due event of their hooks, and of ``hooks``,
        wait until then."""
        d = webhook_deliveries
        with self.engine.begin() as conn:
            for claim in claims:
                conn.execute(
                    update(d)
                    .where(d.c.id == claim.delivery_id, d.c.attempts == claim.attempt)
                    .values(attempts=d.c.attempts - 1, lease_until=None)
                )
            if until is not None:
                conn.execute(
                    update(d)
                    .where(
                        d.c.hook.in_({c.hook for c in claims} | set(hooks)),
                        d.c.status == "pending",
                        d.c.next_attempt_at < until,
                        or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
                    )
                    .values(next_attempt_at=until)
                )

    def record_webhook_attempt(
        self,
        claim: WebhookClaim,
        result: AttemptResult,
        now: datetime,
        *,
        retry_at: datetime | None,
        max_failures: int,
    ) -> bool:
        """Record one POST: the history row, the delivery (delivered, retried at
        ``retry_at``, or given up when it is None), the hook's run of failures. Returns
        whether this failure turned the hook off."""
        d, h = webhook_deliveries, webhook_hooks
        with self.engine.begin() as conn:
            conn.execute(
                insert(webhook_attempts).values(
                    hook=claim.hook, event_id=claim.event_id, event_type=claim.event_type,
                    attempt=claim.attempt, at=now, status_code=result.status_code,
                    error=result.error[:500], duration_ms=result.duration_ms,
                )
            )  # fmt: skip
            values: dict[str, Any] = {
                "lease_until": None,
                "last_code": result.status_code,
                "last_error": result.error[:500],
                "updated_at": now,
            }
            if result.ok:
                values["status"] = "delivered"
            elif retry_at is not None:
                values["next_attempt_at"] = retry_at
            else:
                values["status"] = "failed"
            conn.execute(
                update(d)
                .where(d.c.id == claim.delivery_id, d.c.attempts == claim.attempt, d.c.status == "pending")
                .values(**values)
            )
            mine = h.c.name == claim.hook
            if result.ok:
                conn.execute(update(h).where(mine).values(failures=0, last_success_at=now))
                return False
            conn.execute(
                update(h)
                .where(mine)
                .values(failures=h.c.failures + 1, last_failure_at=now, last_error=result.error[:500])
            )
            if not max_failures:
                return False
            off = conn.execute(
                update(h)
                .where(mine, h.c.enabled == 1, h.c.failures >= max_failures)
                .values(enabled=0, disabled_at=now)
            )
            return bool(off.rowcount)

    def enable_webhook(self, name: str, now: datetime, audit: AuditEntry | None = None) -> bool:
        """Turn a hook back on: its run of failures starts again at 0 and the events it
        missed are due now. False when no such hook was ever configured."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(webhook_hooks)
                .where(webhook_hooks.c.name == name)
                .values(enabled=1, failures=0, disabled_at=None)
            )
            if not done.rowcount:
                return False
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.hook == name, webhook_deliveries.c.status == "pending")
                .values(next_attempt_at=now)
            )
            if audit is not None:
                insert_audit(conn, audit)
            return True

    def webhook_states(self) -> dict[str, dict[str, Any]]:
        """Each hook's state row, with how many of its events are pending."""
        with self.engine.connect() as conn:
            pending = dict(
                conn.execute(
                    select(webhook_deliveries.c.hook, func.count())
                    .where(webhook_deliveries.c.status == "pending")
                    .group_by(webhook_deliveries.c.hook)
                ).all()
            )
            rows = conn.execute(select(webhook_hooks)).all()
        return {r.name: {**r._mapping, "pending": int(pending.get(r.name, 0))} for r in rows}

    def webhook_history(
        self, limit: int = 50, *, hook: str | None = None, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest attempts first (keyset pages: pass the last id as ``before_id``)."""
        query = select(webhook_attempts).order_by(webhook_attempts.c.id.desc()).limit(limit)
        if hook is not None:
            query = query.where(webhook_attempts.c.hook == hook)
        if before_id is not None:
            query = query.where(webhook_attempts.c.id < before_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def next_webhook_due(self) -> datetime | None:
        """When the next pending delivery of a hook that is on is due."""
        d = webhook_deliveries
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.min(d.c.next_attempt_at)).where(
                    d.c.status == "pending",
                    d.c.hook.in_(select(webhook_hooks.c.name).where(webhook_hooks.c.enabled == 1)),
                )
            )

    def prune_webhooks(self, before: datetime) -> int:
        """Forget attempts, and events no hook still waits for, older than ``before``."""
        d, e = webhook_deliveries, webhook_events
        old = select(e.c.id).where(e.c.created_at < before)
        waiting = exists().where(d.c.event_id == e.c.id, d.c.status == "pending")
        with self.engine.begin() as conn:
            conn.execute(delete(webhook_attempts).where(webhook_attempts.c.at < before))
            conn.execute(delete(d).where(d.c.event_id.in_(old), d.c.status != "pending"))
            gone = conn.execute(delete(e).where(and_(e.c.created_at < before, ~waiting)))
            return int(gone.rowcount or 0)

