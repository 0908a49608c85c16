"""Subscribers and their subscriptions in the store (database I/O).

A subscriber is one row per address with a status (``active``, ``pending``,
``unsubscribed``, ``bounced``, ``erased``) and one ``subscriptions`` row per digest.
Every change that rules out mail (leaving a digest, leaving everything, erasure) skips the
subscriber's queued deliveries in the same transaction: someone who left gets nothing
more, from that moment. The bulk import lives in :mod:`publisher.store.roster`, sign-up
requests in :mod:`publisher.store.signups`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, or_, select, update

from publisher.errors import SubscriberError
from publisher.models import Subscriber
from publisher.store.engagement import forget_engagement
from publisher.store.feedback import forget_provider_events
from publisher.store.outbox import Routes, forget_subscriber_events, status_changed
from publisher.store.rows import json_list
from publisher.store.schema import (
    bounce_events,
    deliveries,
    issues,
    signups,
    subscribers,
    subscriptions,
    suppressions,
)

ACTIVE = "active"


def add_subscription(
    conn: Connection, subscriber_id: int, digest_id: str, now: datetime, tags: Sequence[str] = ()
) -> None:
    """Add one subscription (every issue) for a subscriber who does not have it yet."""
    conn.execute(
        insert(subscriptions).values(
            subscriber_id=subscriber_id,
            digest_id=digest_id,
            frequency="every",
            tags=json.dumps(list(tags)),
            created_at=now,
        )
    )


def load_subscriber(conn: Connection, sub_id: int) -> Subscriber:
    """The subscriber with id ``sub_id`` (which must exist) and its digests, sorted."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == sub_id)).one()
    digests = conn.scalars(
        select(subscriptions.c.digest_id)
        .where(subscriptions.c.subscriber_id == sub_id)
        .order_by(subscriptions.c.digest_id)
    )
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        status=row.status,
        created_at=row.created_at,
        digests=tuple(digests),
    )


def skip_queued(
    conn: Connection, subscriber_id: int, digest_ids: Sequence[str] | None, now: datetime
) -> None:
    """Queued deliveries to a subscriber (of these digests, or all) become skipped."""
    where = [deliveries.c.subscriber_id == subscriber_id, deliveries.c.status == "queued"]
    if digest_ids is not None:
        where.append(
            deliveries.c.issue_id.in_(
                select(issues.c.id).where(issues.c.digest_id.in_(list(digest_ids)))
            )
        )
    conn.execute(
        update(deliveries)
        .where(*where)
        .values(status="skipped", last_reply="subscriber unsubscribed", updated_at=now)
    )


class SubscribersMixin:
    """Subscribers, their subscriptions and erasure (mixed into :class:`publisher.store.Store`)."""

    engine: Engine
    webhook_routes: Routes

    def add_subscriber(
        self,
        email: str,
        name: str,
        digests: Iterable[str],
        now: datetime,
        *,
        status: str = ACTIVE,
        reactivate: bool = True,
        tags: Sequence[str] = (),
        source: str = "cli",
    ) -> tuple[Subscriber, bool]:
        """Add a subscriber with subscriptions; return it and whether it is new.

        An existing address keeps its row. With ``reactivate`` (an operator's explicit add)
        it becomes active again and gains the digests; without it (an import), it is left
        exactly as it is, so a bulk import never re-subscribes someone who left. ``source``
        (cli, api, ...) is recorded with the status change.
        """
        digests = list(dict.fromkeys(digests))
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subscribers).where(subscribers.c.email == email).with_for_update()
            ).first()
            created = row is None
            if created:
                sub_id = conn.execute(
                    insert(subscribers).values(
                        email=email, name=name, status=status, created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]
            else:
                sub_id = row.id
                if not reactivate:
                    return load_subscriber(conn, sub_id), False
                changes: dict[str, Any] = {"status": status, "updated_at": now}
                if name:
                    changes["name"] = name
                conn.execute(
                    update(subscribers).where(subscribers.c.id == sub_id).values(**changes)
                )
            have = set(
                conn.scalars(
                    select(subscriptions.c.digest_id).where(subscriptions.c.subscriber_id == sub_id)
                )
            )
            for digest_id in digests:
                if digest_id not in have:
                    add_subscription(conn, sub_id, digest_id, now, tags)
            # After the digests: the event carries them.
            before = None if row is None else row.status
            status_changed(conn, self.webhook_routes, sub_id, before, status, source, now)
            return load_subscriber(conn, sub_id), created

    def list_subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """Every subscriber (optionally of one status), oldest first."""
        query = select(subscribers.c.id).order_by(subscribers.c.id)
        if status:
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            ids = list(conn.scalars(query))
            for sub_id in ids:
                yield load_subscriber(conn, sub_id)

    def find_subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with this address, if any."""
        with self.engine.connect() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            return None if sub_id is None else load_subscriber(conn, sub_id)

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, if any."""
        with self.engine.connect() as conn:
            found = conn.scalar(select(subscribers.c.id).where(subscribers.c.id == subscriber_id))
            return None if found is None else load_subscriber(conn, found)

    def set_subscriber_status(
        self, email: str, status: str, now: datetime, *, source: str = "cli"
    ) -> Subscriber:
        """Change a subscriber's status (``remove`` sets ``unsubscribed``)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subscribers.c.id, subscribers.c.status)
                .where(subscribers.c.email == email)
                .with_for_update()
            ).first()
            if row is None:
                raise SubscriberError(f"no subscriber with address {email!r}")
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == row.id)
                .values(status=status, updated_at=now)
            )
            status_changed(conn, self.webhook_routes, row.id, row.status, status, source, now)
            return load_subscriber(conn, row.id)

    def count_recipients(self, digest_id: str) -> int:
        """How many active subscribers a new issue of ``digest_id`` would go to."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(
                        subscriptions.join(
                            subscribers, subscribers.c.id == subscriptions.c.subscriber_id
                        )
                    )
                    .where(subscriptions.c.digest_id == digest_id, subscribers.c.status == ACTIVE)
                )
                or 0
            )

    def unsubscribe(
        self, subscriber_id: int, digest_id: str | None, now: datetime, *, source: str = "web"
    ) -> Subscriber | None:
        """Unsubscribe from one digest, or (``digest_id`` None) from everything; idempotent.

        Queued deliveries that the change rules out are skipped in the same transaction.
        Leaving the last digest is leaving everything. None for an unknown subscriber.
        ``source`` (web, cli, api, complaint) is recorded with the change.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id).with_for_update()
            ).first()
            if row is None:
                return None
            leave_all = digest_id is None
            if digest_id is not None:
                gone = conn.execute(
                    subscriptions.delete().where(
                        subscriptions.c.subscriber_id == subscriber_id,
                        subscriptions.c.digest_id == digest_id,
                    )
                )
                skip_queued(conn, subscriber_id, [digest_id], now)
                left = conn.scalar(
                    select(func.count())
                    .select_from(subscriptions)
                    .where(subscriptions.c.subscriber_id == subscriber_id)
                )
                leave_all = not left
                if gone.rowcount:  # leaving the last one is leaving everything: one event
                    status_changed(
                        conn, self.webhook_routes, subscriber_id, ACTIVE, "unsubscribed",
                        source, now, digest_id, notify=not leave_all,
                    )  # fmt: skip
            if leave_all:
                if row.status in (ACTIVE, "pending"):
                    conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == subscriber_id)
                        .values(status="unsubscribed", updated_at=now)
                    )
                    status_changed(
                        conn, self.webhook_routes, subscriber_id, row.status, "unsubscribed",
                        source, now,
                    )  # fmt: skip
                elif source == "complaint":  # they had left already: the complaint still counts
                    status_changed(
                        conn, self.webhook_routes, subscriber_id, row.status, row.status,
                        source, now,
                    )  # fmt: skip
                conn.execute(signups.delete().where(signups.c.subscriber_id == subscriber_id))
                skip_queued(conn, subscriber_id, None, now)
            return load_subscriber(conn, subscriber_id)

    def subscription_rows(self, subscriber_id: int) -> list[dict[str, Any]]:
        """A subscriber's subscriptions: ``digest_id``, ``frequency``, ``tags``, ``created_at``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriptions)
                .where(subscriptions.c.subscriber_id == subscriber_id)
                .order_by(subscriptions.c.digest_id)
            )
            return [
                {
                    "digest_id": r.digest_id,
                    "frequency": r.frequency,
                    "tags": json_list(r.tags),
                    "created_at": r.created_at,
                }
                for r in rows
            ]

    def update_preferences(
        self,
        subscriber_id: int,
        name: str,
        digests: Sequence[str] | None,
        tags: Sequence[str],
        now: datetime,
        *,
        source: str = "web",
    ) -> Subscriber | None:
        """Set a subscriber's name, tags and (``digests`` not None) digests.

        Digests left are unsubscribed (their queued deliveries skipped); choosing none is
        unsubscribing from everything. None for an unknown or erased subscriber.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id).with_for_update()
            ).first()
            if row is None or row.status == "erased":
                return None
            values: dict[str, Any] = {"name": name, "updated_at": now}
            mine = subscriptions.c.subscriber_id == subscriber_id
            have = set(conn.scalars(select(subscriptions.c.digest_id).where(mine)))
            if digests is not None:
                wanted = list(dict.fromkeys(digests))
                gone = sorted(have - set(wanted))
                if gone:
                    conn.execute(subscriptions.delete().where(mine, subscriptions.c.digest_id.in_(gone)))
                    skip_queued(conn, subscriber_id, gone, now)
                    for digest_id in gone:
                        status_changed(
                            conn, self.webhook_routes, subscriber_id, ACTIVE, "unsubscribed",
                            source, now, digest_id, notify=bool(wanted),
                        )  # fmt: skip
                for digest_id in wanted:
                    if digest_id not in have:
                        add_subscription(conn, subscriber_id, digest_id, now)
                if not wanted and row.status in (ACTIVE, "pending"):
                    values["status"] = "unsubscribed"
                    skip_queued(conn, subscriber_id, None, now)
                    status_changed(
                        conn, self.webhook_routes, subscriber_id, row.status, "unsubscribed",
                        source, now,
                    )  # fmt: skip
            conn.execute(update(subscriptions).where(mine).values(tags=json.dumps(list(tags))))
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))
            return load_subscriber(conn, subscriber_id)

    def subscriber_history(self, subscriber_id: int) -> list[dict[str, Any]]:
        """Every delivery to a subscriber: digest, period, subject, status, sent_at."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    issues.c.digest_id,
                    issues.c.period,
                    issues.c.subject,
                    deliveries.c.status,
                    deliveries.c.sent_at,
                )
                .join(issues, issues.c.id == deliveries.c.issue_id)
                .where(deliveries.c.subscriber_id == subscriber_id)
                .order_by(deliveries.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def erase_subscriber(self, subscriber_id: int, email_hash: str, now: datetime) -> bool:
        """Erase a subscriber (right to erasure); False when there is no such subscriber.

        The row stays (deliveries refer to it) but is anonymised: a placeholder address, no
        name, status ``erased``, no subscriptions, no engagement rows. Bounce records, provider
        events and SMTP replies lose the address too. Only ``email_hash`` is kept, suppressed.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id).with_for_update()
            ).first()
            if row is None:
                return False
            if row.status == "erased":
                return True
            placeholder = f"erased-{subscriber_id}@erased.invalid"
            skip_queued(conn, subscriber_id, None, now)
            conn.execute(
                update(deliveries)
                .where(deliveries.c.subscriber_id == subscriber_id, deliveries.c.last_reply.is_not(None))
                .values(last_reply=func.replace(deliveries.c.last_reply, row.email, placeholder))
            )
            conn.execute(
                update(bounce_events)
                .where(or_(bounce_events.c.subscriber_id == subscriber_id, bounce_events.c.email == row.email))
                .values(email=placeholder, diagnostic="")
            )
            forget_provider_events(conn, subscriber_id, row.email, placeholder)
            conn.execute(subscriptions.delete().where(subscriptions.c.subscriber_id == subscriber_id))
            conn.execute(signups.delete().where(signups.c.subscriber_id == subscriber_id))
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(email=placeholder, name="", status="erased", updated_at=now)
            )
            status_changed(
                conn, self.webhook_routes, subscriber_id, row.status, "erased", "erasure", now
            )
            forget_subscriber_events(conn, subscriber_id)
            forget_engagement(conn, subscriber_id)
            if not conn.scalar(
                select(suppressions.c.email_hash).where(suppressions.c.email_hash == email_hash)
            ):
                conn.execute(insert(suppressions).values(
                    email_hash=email_hash, reason="erased", created_at=now, note="erasure request"))  # fmt: skip
            else:
                # Erasure is the last word on an address that had complained before.
                conn.execute(
                    update(suppressions)
                    .where(suppressions.c.email_hash == email_hash)
                    .values(reason="erased", created_at=now, note="erasure request")
                )
            return True
