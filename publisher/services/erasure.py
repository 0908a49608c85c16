"""Erasing a subscriber at their request (store I/O): the right to erasure, for every door.

The preferences page lets subscribers erase themselves; operators do it for them through
the API (``DELETE /api/v1/subscribers/{id}``) and the console. What remains is an
anonymised row (deliveries refer to it) and a one-way hash of the address on the
suppression list, so no import can bring it back (see
:meth:`publisher.store.subscribers.SubscribersMixin.erase_subscriber`).
"""

from __future__ import annotations

from publisher.app import App
from publisher.compose.subscriptions import email_hash
from publisher.errors import SubscriberError
from publisher.services.audit import Actor, record_audit


def erase_subscriber(app: App, subscriber_id: int, *, actor: Actor) -> None:
    """Erase subscriber ``subscriber_id`` and record who asked; SubscriberError when there
    is no such subscriber. Erasing an erased subscriber again changes nothing."""
    subscriber = app.store.subscriber_by_id(subscriber_id)
    if subscriber is None:
        raise SubscriberError(f"no subscriber #{subscriber_id}")
    if subscriber.status == "erased":
        return
    app.store.erase_subscriber(subscriber_id, email_hash(subscriber.email), app.clock())
    # The audit names the row, never the address it no longer holds.
    record_audit(app, actor, "subscriber.erase", f"subscriber #{subscriber_id}")
