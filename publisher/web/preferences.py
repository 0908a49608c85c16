"""The subscriber's settings, ``/preferences/<token>`` (store I/O through the services).

``GET`` shows the form: name, digests, frequency and topics; ``POST`` saves it through
:func:`publisher.services.subscriptions.set_subscription`. ``/export`` downloads the
subscriber's data as JSON; ``POST /delete`` erases it (GDPR), keeping only a one-way hash
of the address so that it is never added back by mistake. Forms carry the CSRF token.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.compose import subscriptions
from publisher.compose.links import TokenError, read_token
from publisher.compose.planning import FREQUENCIES
from publisher.compose.subscriptions import Form, FormError
from publisher.models import Subscriber
from publisher.services.subscriptions import known_tags, set_subscription
from publisher.web.common import (
    bad_link,
    context,
    csrf_ok,
    csrf_token,
    message,
    no_longer_valid,
    offload,
    page,
    read_form,
    root,
    set_csrf,
)

FREQUENCY_LABELS = {
    "every": "Every issue",
    "daily": "At most one email a day (a daily round-up)",
    "weekly": "One email a week (a weekly round-up)",
}


def preferences_state(request: Request, token: str) -> Subscriber | Response:
    """The token's subscriber, or the page saying why the link does not work."""
    ctx = context(request)
    try:
        data = read_token(ctx.secret, token, subscriptions.PREFERENCES_PURPOSE, ctx.now())
    except TokenError as exc:
        return bad_link(request, exc)
    subscriber = ctx.app.store.subscriber_by_id(data.subscriber_id)
    if subscriber is None or subscriber.status == "erased":
        return no_longer_valid(request)
    return subscriber


def preferences_page(
    request: Request,
    token: str,
    subscriber: Subscriber,
    status: int = 200,
    notice: str = "",
    errors: dict[str, str] | None = None,
) -> Response:
    """The settings form for ``subscriber``, with a ``notice`` or the fields' ``errors``."""
    ctx = context(request)
    rows = ctx.app.store.subscription_rows(subscriber.id)
    chosen = {r["digest_id"] for r in rows}
    tags = {t for r in rows for t in r["tags"]}
    frequency = rows[0]["frequency"] if rows else FREQUENCIES[0]
    csrf, new = csrf_token(request)
    base = f"{root(request)}preferences/{token}"
    response = page(
        request,
        "preferences.html.j2",
        "Your subscription",
        status,
        address=subscriptions.mask_address(subscriber.email),
        name=subscriber.name,
        active=subscriber.status == "active",
        state=subscriber.status,
        notice=notice,
        errors=errors or {},
        csrf=csrf,
        digests=[
            {"id": d.id, "title": d.title, "checked": d.id in chosen} for d in ctx.config.digests
        ],
        frequencies=[
            {"value": f, "label": FREQUENCY_LABELS.get(f, f), "checked": f == frequency}
            for f in FREQUENCIES
        ],
        tags=[{"name": t, "checked": t in tags} for t in known_tags(ctx.app)],
        export_url=f"{base}/export",
        delete_url=f"{base}/delete",
    )
    if new:
        set_csrf(response, request, csrf)
    return response


def preferences_get_sync(request: Request, token: str) -> Response:
    """The settings form."""
    state = preferences_state(request, token)
    if isinstance(state, Response):
        return state
    return preferences_page(request, token, state)


def preferences_post_sync(request: Request, token: str, form: Form) -> Response:
    """Save the settings form."""
    state = preferences_state(request, token)
    if isinstance(state, Response):
        return state
    subscriber = state
    if not csrf_ok(request, form):
        errors = {"csrf": "This form expired. Nothing was changed; please save again."}
        return preferences_page(request, token, subscriber, 400, errors=errors)
    try:
        updated = set_subscription(
            context(request).app,
            subscriber,
            name=subscriptions.first(form, "name"),
            digests=form.get("digest", []),
            frequency=subscriptions.first(form, "frequency"),
            tags=form.get("tag", []),
        )
    except FormError as exc:
        return preferences_page(request, token, subscriber, 400, errors=exc.errors)
    if updated is None:
        return no_longer_valid(request)
    if subscriber.status == "active" and updated.status != "active":
        notice = "Saved. You are unsubscribed from everything."
    else:
        notice = "Saved."
    return preferences_page(request, token, updated, notice=notice)


def export_sync(request: Request, token: str) -> Response:
    """The subscriber's data as a JSON download."""
    state = preferences_state(request, token)
    if isinstance(state, Response):
        return state
    ctx = context(request)
    store = ctx.app.store
    document = subscriptions.export_document(
        state,
        store.subscription_rows(state.id),
        store.subscriber_history(state.id),
        ctx.now(),
        store.subscriber_engagement(state.id),
    )
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="my-subscription-data.json"',
            "Cache-Control": "no-store",
        },
    )


def delete_sync(request: Request, token: str, form: Form) -> Response:
    """Erase the subscriber, once the box confirming it is ticked."""
    state = preferences_state(request, token)
    if isinstance(state, Response):
        return state
    if not csrf_ok(request, form):
        errors = {"csrf": "This form expired. Nothing was deleted; please try again."}
        return preferences_page(request, token, state, 400, errors=errors)
    if subscriptions.first(form, "confirm") != "yes":
        errors = {"confirm": "Tick the box to confirm that your data should be deleted."}
        return preferences_page(request, token, state, 400, errors=errors)
    ctx = context(request)
    ctx.app.store.erase_subscriber(state.id, subscriptions.email_hash(state.email), ctx.now())
    return message(
        request,
        "Your data was deleted",
        [
            "We deleted your address, name and settings, and you will get no more email.",
            "We keep only a one-way hash of the address, so that it is never added back by mistake.",
        ],
    )


async def preferences_get(request: Request) -> Response:
    """``GET /preferences/<token>``."""
    return await offload(preferences_get_sync, request, request.path_params["token"])


async def preferences_post(request: Request) -> Response:
    """``POST /preferences/<token>``."""
    form = await read_form(request)
    return await offload(preferences_post_sync, request, request.path_params["token"], form)


async def preferences_export(request: Request) -> Response:
    """``GET /preferences/<token>/export``."""
    return await offload(export_sync, request, request.path_params["token"])


async def preferences_delete(request: Request) -> Response:
    """``POST /preferences/<token>/delete``."""
    form = await read_form(request)
    return await offload(delete_sync, request, request.path_params["token"], form)


def routes() -> list[BaseRoute]:
    """The settings form, its export and its erasure."""
    return [
        Route("/preferences/{token}", preferences_get, methods=["GET", "HEAD"]),
        Route("/preferences/{token}", preferences_post, methods=["POST"]),
        Route("/preferences/{token}/export", preferences_export, methods=["GET", "HEAD"]),
        Route("/preferences/{token}/delete", preferences_delete, methods=["POST"]),
    ]
