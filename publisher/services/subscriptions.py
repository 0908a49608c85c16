"""Subscribers' own changes (store and transport I/O through the app): sign-up and settings.

Plain functions that know neither Starlette nor click, so the web pages, the console and
the API call the same ones:

- :func:`subscribe` is the double opt-in sign-up: it checks the request, records it as
  pending and mails the confirmation link (:mod:`publisher.services.signup`);
- :func:`set_subscription` changes a subscriber's name, digests, frequency and topics, as
  the preferences page does.

The checks are the pure ones of :mod:`publisher.compose.subscriptions`; a bad request
raises :class:`~publisher.compose.subscriptions.FormError` naming each bad field, before
anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from publisher.app import App
from publisher.compose import subscriptions
from publisher.compose.planning import FREQUENCIES
from publisher.models import Subscriber
from publisher.services import signup
from publisher.services.cadence import set_frequency


def known_tags(app: App) -> list[str]:
    """The topics a subscriber may choose: every stored article's tags and every digest's."""
    tags = set(app.store.all_tags())
    for digest in app.config.digests:
        tags.update(digest.tags)
    return sorted(tags, key=str.lower)


def subscribe(
    app: App,
    email: str,
    name: str = "",
    digests: Sequence[str] = (),
    tags: Sequence[str] = (),
    *,
    allow: Callable[[str], bool] | None = None,
) -> Subscriber | None:
    """Sign ``email`` up (double opt-in): check, record as pending, mail the confirmation link.

    With one digest configured, choosing none means that one. ``allow`` (a rate limit) is
    asked with the address's hash once the request is valid; when it says no, nothing is
    recorded or sent and the result is None. Raises FormError for a bad request, and a
    PublisherError (DeliveryError) when the email cannot be sent; the request then stays
    recorded, and a new request sends a new link.
    """
    digest_ids = [d.id for d in app.config.digests]
    form: subscriptions.Form = {
        "email": [email],
        "name": [name],
        "digest": list(digests),
        "tag": list(tags),
    }
    checked = subscriptions.read_signup(form, digest_ids, known_tags(app))
    if allow is not None and not allow(subscriptions.email_hash(checked.email)):
        return None
    transport = app.new_transport()
    transport.open()
    try:
        return signup.request(
            app, transport, checked.email, checked.name, checked.digests, checked.tags
        )
    finally:
        transport.close()


def set_subscription(
    app: App,
    subscriber: Subscriber,
    *,
    name: str,
    digests: Sequence[str],
    frequency: str,
    tags: Sequence[str],
) -> Subscriber | None:
    """Set ``subscriber``'s name, digests, frequency and topics; the updated subscriber.

    Digests change only for an active subscriber (a pending one confirms their sign-up
    first); choosing none unsubscribes from everything. An empty ``frequency`` means the
    first of :data:`~publisher.compose.planning.FREQUENCIES`. Raises FormError for an
    unknown digest, topic or frequency (nothing changed); None when the subscriber is
    unknown or erased.
    """
    form: subscriptions.Form = {
        "name": [name],
        "digest": list(digests),
        "frequency": [frequency],
        "tag": list(tags),
    }
    digest_ids = [d.id for d in app.config.digests]
    wanted = subscriptions.read_preferences(form, digest_ids, known_tags(app), FREQUENCIES)
    active = subscriber.status == "active"
    updated = app.store.update_preferences(
        subscriber.id,
        wanted.name,
        wanted.digests if active else None,
        wanted.tags,
        app.clock(),
    )
    if updated is not None and updated.status == "active" and updated.digests:
        set_frequency(app, updated.id, list(updated.digests), wanted.frequency)
    return updated
