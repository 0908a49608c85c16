"""The webhook outbox (database I/O): events written in the transaction of their cause.

:func:`emit` writes an event into ``webhook_events``, with one ``webhook_deliveries`` row
per hook that asked for its type, on the caller's connection: the event commits with what
caused it, or not at all. The routes (event type -> hook names) come from the config; the
:class:`~publisher.app.App` sets them on the store as ``webhook_routes``, so a store
opened without them (or with no ``[[webhooks]]``) writes no events. Delivering them is
:mod:`publisher.store.webhooks`' part.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from publisher.store.events import record_change
from publisher.store.schema import (
    deliveries,
    issues,
    subscribers,
    subscriptions,
    webhook_deliveries,
    webhook_events,
)

Routes = Mapping[str, Sequence[str]]  # event type -> names of the hooks that want it


def emit(
    conn: Connection,
    routes: Routes,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    subscriber_id: int | None = None,
) -> None:
    """Queue one event for every hook that wants ``event_type``, in ``conn``'s transaction."""
    hooks = routes.get(event_type) or ()
    if not hooks:
        return
    event_pk = conn.execute(
        insert(webhook_events).values(
            event_id=f"evt_{uuid.uuid4().hex}",
            type=event_type,
            data=json.dumps(data, separators=(",", ":"), default=str),
            subscriber_id=subscriber_id,
            created_at=now,
        )
    ).inserted_primary_key[0]
    conn.execute(
        insert(webhook_deliveries),
        [
            {"hook": hook, "event_id": event_pk, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "last_error": "", "updated_at": now}
            for hook in hooks
        ],
    )  # fmt: skip


def subscriber_data(conn: Connection, subscriber_id: int) -> dict[str, Any]:
    """A subscriber as events carry it: id, email, name, status, digests, created_at."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).one()
    digests = conn.scalars(
        select(subscriptions.c.digest_id)
        .where(subscriptions.c.subscriber_id == subscriber_id)
        .order_by(subscriptions.c.digest_id)
    )
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "status": row.status,
        "digests": list(digests),
        "created_at": row.created_at.isoformat(),
    }


def forget_subscriber_events(conn: Connection, subscriber_id: int) -> None:
    """Erasure: delete the queued events that name this subscriber, and their deliveries."""
    ids = select(webhook_events.c.id).where(webhook_events.c.subscriber_id == subscriber_id)
    conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.event_id.in_(ids)))
    conn.execute(delete(webhook_events).where(webhook_events.c.subscriber_id == subscriber_id))


def _subscriber_event(old: str | None, new: str, source: str, digest_id: str | None) -> str | None:
    """The webhook event a status change makes, if any."""
    if source == "complaint" and digest_id is None:
        return "subscriber.complained"
    if digest_id is not None:
        return "subscriber.unsubscribed" if new == "unsubscribed" else None
    if old == new:
        return None
    if new == "active":
        return "subscriber.created"
    if new == "unsubscribed":
        return "subscriber.unsubscribed"
    return None


def status_changed(
    conn: Connection,
    routes: Routes,
    subscriber_id: int,
    old: str | None,
    new: str,
    source: str,
    now: datetime,
    digest_id: str | None = None,
    *,
    notify: bool = True,
) -> None:
    """Record a subscriber's change of status (:func:`record_change`) and queue the webhook
    event it makes (``subscriber.created`` when they become active, ``.unsubscribed``,
    ``.complained``), all in ``conn``'s transaction. ``notify=False``: the event only."""
    record_change(conn, subscriber_id, old, new, source, now, digest_id)
    event = _subscriber_event(old, new, source, digest_id) if notify else None
    if event and routes.get(event):
        data = {
            "subscriber": subscriber_data(conn, subscriber_id),
            "previous_status": old,
            "digest": digest_id,
            "source": source,
        }
        emit(conn, routes, event, data, now, subscriber_id)


def issue_data(conn: Connection, issue_id: int) -> dict[str, Any]:
    """An issue as events carry it, with its delivery counts by status."""
    row = conn.execute(select(issues).where(issues.c.id == issue_id)).one()
    counts = conn.execute(
        select(deliveries.c.status, func.count())
        .where(deliveries.c.issue_id == issue_id)
        .group_by(deliveries.c.status)
    ).all()
    return {
        "id": row.id,
        "digest": row.digest_id,
        "period": row.period,
        "subject": row.subject,
        "status": row.status,
        "cadence": row.cadence,
        "created_at": row.created_at.isoformat(),
        "deliveries": {status: int(n) for status, n in counts},
    }


def issue_changed(
    conn: Connection,
    routes: Routes,
    event_type: str,
    issue_id: int,
    now: datetime | None,
    **extra: Any,
) -> None:
    """Queue ``issue.sent`` or ``issue.paused`` for this issue (as it is now), with ``extra``
    keys in its data. ``now`` may be None only when no hook wants the event."""
    if routes.get(event_type):
        if now is None:
            raise ValueError(f"{event_type} for issue {issue_id}: the store needs `now`")
        emit(conn, routes, event_type, {"issue": issue_data(conn, issue_id), **extra}, now)
