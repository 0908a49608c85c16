"""The subscriber directory in the store (database I/O): one page of a filtered search.

The console's subscriber list and the API's ``GET /api/v1/subscribers`` read the same
query. It pages by keyset (``id < :before``, newest first), never by OFFSET: the page
after the millionth row costs what the first page costs, and a row added or removed while
someone pages never shifts what the next page shows. The indexes that make each filter a
range read are ``ix_subscribers_status_id`` (status, id) and the subscriptions'
unique (subscriber_id, digest_id), probed once per candidate row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, and_, exists, func, or_, select

from publisher.models import Subscriber
from publisher.store.schema import subscribers, subscriptions

ERASED = "erased"


@dataclass(frozen=True)
class SubscriberFilter:
    """What to look for: ``query`` is a case-insensitive substring of the address or the
    name; ``digest``, ``status`` and ``topic`` must match exactly. Erased subscribers are
    found only by asking for ``status="erased"``."""

    query: str = ""
    digest: str | None = None
    status: str | None = None
    topic: str | None = None


def _like(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` escaped (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(wanted: SubscriberFilter) -> list[ColumnElement[bool]]:
    """The WHERE terms of a filter (without the keyset bound)."""
    where: list[ColumnElement[bool]] = []
    if wanted.status:
        where.append(subscribers.c.status == wanted.status)
    else:
        where.append(subscribers.c.status != ERASED)
    if wanted.query:
        pattern = _like(wanted.query.lower())
        where.append(
            or_(
                func.lower(subscribers.c.email).like(pattern, escape="\\"),
                func.lower(subscribers.c.name).like(pattern, escape="\\"),
            )
        )
    if wanted.digest or wanted.topic:
        terms = [subscriptions.c.subscriber_id == subscribers.c.id]
        if wanted.digest:
            terms.append(subscriptions.c.digest_id == wanted.digest)
        if wanted.topic:
            # Topics are a JSON list of strings: the quoted topic is one whole element.
            terms.append(subscriptions.c.tags.like(_like(json.dumps(wanted.topic)), escape="\\"))
        where.append(exists().where(and_(*terms)))
    return where


class DirectoryMixin:
    """Searching subscribers page by page (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def search_subscribers(
        self, wanted: SubscriberFilter, *, before_id: int | None, limit: int
    ) -> list[Subscriber]:
        """Up to ``limit`` subscribers matching ``wanted`` with an id below ``before_id``
        (None: from the newest), newest first, each with its digests."""
        query = select(subscribers).where(*_conditions(wanted))
        if before_id is not None:
            query = query.where(subscribers.c.id < before_id)
        query = query.order_by(subscribers.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            digests = self._digests_of(conn, [r.id for r in rows])
        return [
            Subscriber(
                id=r.id,
                email=r.email,
                name=r.name,
                status=r.status,
                created_at=r.created_at,
                digests=tuple(digests.get(r.id, ())),
            )
            for r in rows
        ]

    @staticmethod
    def _digests_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
        """Each subscriber's digests, sorted, for one page of ids (one query)."""
        found: dict[int, list[str]] = defaultdict(list)
        if not ids:
            return found
        rows = conn.execute(
            select(subscriptions.c.subscriber_id, subscriptions.c.digest_id)
            .where(subscriptions.c.subscriber_id.in_(list(ids)))
            .order_by(subscriptions.c.subscriber_id, subscriptions.c.digest_id)
        )
        for subscriber_id, digest_id in rows:
            found[subscriber_id].append(digest_id)
        return found
