"""Double opt-in (store and transport I/O): record a sign-up request and mail its link.

Used by :func:`publisher.services.subscriptions.subscribe` (the web form, ``POST
/subscribe``) and by ``publisher subscribers import --pending``. The confirmation link carries a signed ``confirm`` token bound to the
subscriber and to the request's nonce, valid for seven days; a newer request replaces
the nonce, so only the newest link confirms.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from publisher.app import App
from publisher.compose import subscriptions
from publisher.compose.links import make_token
from publisher.deliver.transports import Transport
from publisher.models import Subscriber


def link(app: App, purpose: str, subscriber_id: int, digest_id: str, at: datetime) -> str:
    """The public URL ``<base_url>/<purpose>/<signed token>``."""
    token = make_token(app.secret(), purpose, subscriber_id, digest_id, at)
    return f"{app.config.web.base_url.rstrip('/')}/{purpose}/{token}"


def request(
    app: App,
    transport: Transport,
    email: str,
    name: str,
    digests: Sequence[str],
    tags: Sequence[str],
    *,
    source: str = "web",
) -> Subscriber:
    """Record a pending sign-up for ``email`` and send its confirmation through ``transport``.

    ``transport`` must be open. Raises DeliveryError when the message is refused; the
    request stays recorded, and a new request sends a new link.
    """
    now = app.clock()
    nonce = secrets.token_hex(8)
    subscriber = app.store.request_signup(email, name, digests, tags, nonce, now, source=source)
    config = app.config
    titles = {d.id: d.title for d in config.digests}
    context = {
        "site": config.site,
        "name": name,
        "digests": [titles.get(d, d) for d in digests],
        "confirm_url": link(app, subscriptions.CONFIRM_PURPOSE, subscriber.id, nonce, now),
        "days": subscriptions.CONFIRM_MAX_AGE.days,
    }
    env = app.templates.env
    domain = config.delivery.from_.rpartition("@")[2] or "localhost"
    raw = subscriptions.confirmation_message(
        site_title=config.delivery.from_name or config.site.title,
        from_addr=config.delivery.from_,
        reply_to=config.delivery.reply_to,
        to_addr=email,
        to_name=name,
        subject=f"Confirm your subscription to {config.site.title}",
        text=env.get_template("web/confirm_email.txt.j2").render(**context),
        html=env.get_template("web/confirm_email.html.j2").render(**context),
        message_id=f"<confirm.{subscriber.id}.{nonce}@{domain}>",
        now=now,
    )
    transport.send(config.delivery.from_, email, raw, f"confirm-{subscriber.id}-{nonce}")
    return subscriber


def confirm(app: App, subscriber_id: int, nonce: str) -> Subscriber | None:
    """Apply the sign-up request with ``nonce``; None when it is no longer open."""
    subscriber = app.store.subscriber_by_id(subscriber_id)
    if subscriber is None:
        return None
    return app.store.confirm_signup(
        subscriber_id, nonce, subscriptions.email_hash(subscriber.email), app.clock()
    )
