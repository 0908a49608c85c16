"""Provider feedback into subscriber states (store I/O): bounces and complaints reported by
provider webhooks (``POST /hooks/<provider>``) and ARF reports.

Every event is stored once (:meth:`~publisher.store.Store.record_provider_event`), then:

- :func:`record_bounce`: a hard bounce (permanent, or a 5.1.x status) marks the subscriber
  ``bounced`` through the same path as a DSN, so ``delivery.bounced`` and the subscriber's
  status event fire; a soft one is counted (3 within 30 days count as hard);
- :func:`record_complaint`: unsubscribes the subscriber and suppresses the address with
  the reason ``complaint`` (``subscriber.complained`` fires).

Both return a :class:`FeedbackResult` naming the issue the event is about, for checks that
follow an issue's bounce and complaint rates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from publisher.app import App
from publisher.compose.messages import id_salt_of, parse_message_id
from publisher.deliver import bounces
from publisher.deliver.feedback import FeedbackEvent
from publisher.errors import PublisherError
from publisher.services import guard, subscribers
from publisher.store import ProviderEventRow


@dataclass(frozen=True)
class FeedbackResult:
    """What one event did: ``outcome`` is ``duplicate``, ``unknown`` (no such subscriber),
    ``counted`` (a soft bounce), ``bounced``, ``complained`` or ``ignored``."""

    provider: str
    event_id: str
    kind: str
    email: str
    outcome: str
    issue_id: int | None
    subscriber_id: int | None


def _locate(app: App, event: FeedbackEvent) -> tuple[str, int | None, int | None]:
    """(address, issue, subscriber) of an event: by our Message-ID first, then by the
    provider's metadata, then by the address and the last issue sent to it."""
    now = app.clock()
    salt = id_salt_of(app.config.site.url, app.config.delivery.from_)
    named = parse_message_id(event.message_id, salt) if event.message_id else None
    if named is None and event.issue_id is not None and event.subscriber_id is not None:
        named = (event.issue_id, event.subscriber_id)
    if named is not None and app.store.was_delivered(*named):
        sub = app.store.subscriber_by_id(named[1])
        if sub is not None:
            return sub.email, named[0], sub.id
    email = event.email.strip().lower()
    found = app.store.find_subscriber(email) if email else None
    if found is None:
        return email, None, None
    return email, app.store.last_issue_sent_to(found.id, min(event.occurred_at, now)), found.id


def _store(app: App, event: FeedbackEvent) -> tuple[bool, str, int | None, int | None]:
    email, issue_id, sub_id = _locate(app, event)
    row = ProviderEventRow(
        event.provider, event.event_id, event.kind, email, issue_id, sub_id,
        event.status or ("permanent" if event.permanent else ""), event.detail, event.occurred_at,
    )  # fmt: skip
    return app.store.record_provider_event(row, app.clock()), email, issue_id, sub_id


def record_bounce(app: App, event: FeedbackEvent) -> FeedbackResult:
    """Store a bounce event once; a hard one marks the subscriber bounced, a soft one counts."""
    fresh, email, issue_id, sub_id = _store(app, event)
    result = lambda outcome: FeedbackResult(  # noqa: E731
        event.provider, event.event_id, "bounce", email, outcome, issue_id, sub_id
    )
    if not fresh:
        return result("duplicate")
    if not email:
        return result("unknown")
    kind = "hard" if event.hard else "soft"
    status = event.status or ("5.0.0" if event.hard else "4.0.0")
    outcome = app.store.record_bounce(
        email, kind, status, event.detail[:1000], f"{event.provider}:{event.event_id}",
        event.occurred_at, app.clock(),
        soft_limit=bounces.SOFT_LIMIT, soft_window=bounces.SOFT_WINDOW,
    )  # fmt: skip
    if event.hard and sub_id is not None and outcome in ("bounced", "counted"):
        guard.after_signal(app, sub_id)  # the issues that reached them may now pass the rate
    return result(outcome)


def record_complaint(app: App, event: FeedbackEvent) -> FeedbackResult:
    """Store a complaint once; unsubscribe the subscriber and suppress the address."""
    fresh, email, issue_id, sub_id = _store(app, event)
    result = lambda outcome: FeedbackResult(  # noqa: E731
        event.provider, event.event_id, "complaint", email, outcome, issue_id, sub_id
    )
    if not fresh:
        return result("duplicate")
    if not email:
        return result("unknown")
    try:
        subscribers.remove(app, email, complaint=True, note=f"complaint via {event.provider}")
    except PublisherError:  # not an address we could ever have mailed
        return result("unknown")
    return result("complained" if sub_id is not None else "unknown")


HANDLERS: dict[str, Callable[[App, FeedbackEvent], FeedbackResult]] = {
    "bounce": record_bounce,
    "complaint": record_complaint,
}


def record_events(app: App, events: Iterable[FeedbackEvent]) -> list[FeedbackResult]:
    """Record each event with its kind's handler (events of other kinds are ignored)."""
    results = []
    for event in events:
        handler = HANDLERS.get(event.kind)
        if handler is None:
            results.append(FeedbackResult(event.provider, event.event_id, event.kind,
                                          event.email, "ignored", None, None))  # fmt: skip
            continue
        results.append(handler(app, event))
    return results
