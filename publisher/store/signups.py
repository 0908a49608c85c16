"""Web sign-ups in the store (database I/O): pending requests and the links' signing secret.

A sign-up from the web is a request until the link mailed to the address is followed:
only then does the subscriber become active with the digests and tags asked for. Each
request carries a nonce, and a newer request replaces an older one, so only the newest
link works. The secret that signs subscriber links is generated per store on first use
when the configuration names none.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from publisher.models import Subscriber
from publisher.store.engine import read_setting
from publisher.store.events import locked_status
from publisher.store.outbox import Routes, status_changed
from publisher.store.rows import json_list
from publisher.store.schema import signups, subscribers, subscriptions, suppressions
from publisher.store.subscribers import ACTIVE, load_subscriber


class SignupsMixin:
    """Sign-up requests and the signing secret (mixed into :class:`publisher.store.Store`)."""

    engine: Engine
    webhook_routes: Routes

    def signing_secret(self) -> str:
        """The secret generated for this store when no ``[web] secret_env`` is set."""
        value = read_setting(self.engine, "signing_secret", lambda: secrets.token_urlsafe(32))
        assert value is not None
        return value

    def request_signup(
        self,
        email: str,
        name: str,
        digests: Sequence[str],
        tags: Sequence[str],
        nonce: str,
        now: datetime,
        *,
        source: str = "web",
    ) -> Subscriber:
        """Record a sign-up request waiting for confirmation; return the subscriber.

        A new address becomes a ``pending`` subscriber; a known one keeps its status and
        its data until the request is confirmed (a stranger cannot change them). The
        request replaces any earlier one, so only the newest confirmation link works.
        """
        with self.engine.begin() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            if sub_id is None:
                sub_id = conn.execute(
                    insert(subscribers).values(
                        email=email, name=name, status="pending", created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]
                status_changed(conn, self.webhook_routes, sub_id, None, "pending", source, now)
            conn.execute(signups.delete().where(signups.c.subscriber_id == sub_id))
            conn.execute(
                insert(signups).values(
                    subscriber_id=sub_id,
                    nonce=nonce,
                    name=name,
                    digests=json.dumps(list(dict.fromkeys(digests))),
                    tags=json.dumps(list(dict.fromkeys(tags))),
                    requested_at=now,
                )
            )
            return load_subscriber(conn, sub_id)

    def pending_signup(self, subscriber_id: int) -> dict[str, Any] | None:
        """The open sign-up request of a subscriber: nonce, name, digests, tags."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(signups).where(signups.c.subscriber_id == subscriber_id)
            ).first()
        if row is None:
            return None
        return {
            "nonce": row.nonce,
            "name": row.name,
            "digests": json_list(row.digests),
            "tags": json_list(row.tags),
            "requested_at": row.requested_at,
        }

    def confirm_signup(
        self, subscriber_id: int, nonce: str, email_hash: str, now: datetime
    ) -> Subscriber | None:
        """Apply the sign-up request carrying ``nonce``: the subscriber becomes active with
        the digests and tags asked for. None when there is no such request (already
        confirmed, or superseded by a newer one). The address leaves the suppression list.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(signups).where(
                    signups.c.subscriber_id == subscriber_id, signups.c.nonce == nonce
                )
            ).first()
            if row is None:
                return None
            tags = json_list(row.tags)
            values: dict[str, Any] = {"status": ACTIVE, "updated_at": now}
            if row.name:
                values["name"] = row.name
            before = locked_status(conn, subscriber_id)
            conn.execute(
                update(subscribers).where(subscribers.c.id == subscriber_id).values(**values)
            )
            have = set(
                conn.scalars(
                    select(subscriptions.c.digest_id).where(
                        subscriptions.c.subscriber_id == subscriber_id
                    )
                )
            )
            for digest_id in json_list(row.digests):
                if digest_id in have:
                    conn.execute(
                        update(subscriptions)
                        .where(
                            subscriptions.c.subscriber_id == subscriber_id,
                            subscriptions.c.digest_id == digest_id,
                        )
                        .values(tags=json.dumps(tags))
                    )
                else:
                    conn.execute(
                        insert(subscriptions).values(
                            subscriber_id=subscriber_id,
                            digest_id=digest_id,
                            frequency="every",
                            tags=json.dumps(tags),
                            created_at=now,
                        )
                    )
            conn.execute(signups.delete().where(signups.c.subscriber_id == subscriber_id))
            conn.execute(suppressions.delete().where(suppressions.c.email_hash == email_hash))
            status_changed(conn, self.webhook_routes, subscriber_id, before, ACTIVE, "web", now)
            return load_subscriber(conn, subscriber_id)
