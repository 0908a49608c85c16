"""What the console shows and exports about subscribers (store reads only).

- :func:`subscriber_record`: one subscriber with their subscriptions, deliveries (issue,
  state, attempts, last SMTP reply, times), bounce reports and any suppression;
- :func:`export_lines`: the CSV export of everyone a directory search finds, in the shape
  ``publisher subscribers export`` writes and ``import`` reads back. It walks the
  directory's keyset pages (:func:`publisher.services.directory.search_subscribers`), so a
  list of any size streams at the cost of one page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from publisher.app import App
from publisher.compose.subscriptions import email_hash
from publisher.errors import SubscriberError
from publisher.models import Subscriber
from publisher.services import directory, subscriber_csv
from publisher.store.records import BounceRecord, DeliveryRecord
from publisher.store.suppressions import Suppression

EXPORT_PAGE = 500  # subscribers per keyset page of an export


@dataclass(frozen=True)
class SubscriberRecord:
    """Everything the console's subscriber page shows."""

    subscriber: Subscriber
    subscriptions: list[dict[str, Any]]
    deliveries: list[DeliveryRecord]
    bounces: list[BounceRecord]
    suppression: Suppression | None


def subscriber_record(app: App, subscriber_id: int, deliveries: int = 200) -> SubscriberRecord:
    """Subscriber ``subscriber_id`` and their records (SubscriberError when unknown);
    ``deliveries`` caps the history shown (newest first)."""
    subscriber = app.store.subscriber_by_id(subscriber_id)
    if subscriber is None:
        raise SubscriberError(f"no subscriber #{subscriber_id}")
    erased = subscriber.status == "erased"
    return SubscriberRecord(
        subscriber=subscriber,
        subscriptions=app.store.subscription_rows(subscriber_id),
        deliveries=app.store.delivery_records(subscriber_id, deliveries),
        bounces=app.store.bounce_records(subscriber.email),
        # An erased row holds a placeholder address: its hash would find nothing.
        suppression=None if erased else app.store.suppression(email_hash(subscriber.email)),
    )


def export_lines(
    app: App,
    *,
    query: str = "",
    digest: str | None = None,
    status: str | None = None,
    topic: str | None = None,
) -> Iterator[str]:
    """CSV lines (header first) for every subscriber the search finds, newest first, one
    row per subscription (a row without a digest for someone who has none).

    The filters are checked before the first line, so a bad one raises instead of
    producing a truncated file.
    """
    first = directory.search_subscribers(
        app, query=query, digest=digest, status=status, topic=topic, limit=EXPORT_PAGE
    )
    return subscriber_csv.export_lines(_rows(app, first, query, digest, status, topic))


def _rows(
    app: App,
    page: directory.Page,
    query: str,
    digest: str | None,
    status: str | None,
    topic: str | None,
) -> Iterator[tuple[str, ...]]:
    while True:
        held = app.store.subscriptions_of([s.id for s in page.items])
        for sub in page.items:
            for digest_id, frequency, tags in held[sub.id] or [("", "", [])]:
                yield (sub.email, sub.name, sub.status, digest_id, frequency, " ".join(tags))
        if page.next_cursor is None:
            return
        page = directory.search_subscribers(
            app, query=query, digest=digest, status=status, topic=topic,
            after=page.next_cursor, limit=EXPORT_PAGE,
        )  # fmt: skip
