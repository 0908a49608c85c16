"""The sign-up form, ``/subscribe`` (store and transport I/O through the services).

``GET`` shows the form (digests preselected by ``?digest=``); ``POST`` checks the CSRF
cookie, the per-network and per-address rate limits and the honeypot field, then hands
the request to :func:`publisher.services.subscriptions.subscribe`, which records it and
mails the confirmation link (double opt-in). The answer is the same "check your inbox"
page whether or not the address was known or limited, so it tells nothing about it.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.compose import subscriptions
from publisher.compose.subscriptions import Form, FormError
from publisher.errors import PublisherError
from publisher.services.subscriptions import known_tags, subscribe
from publisher.web.common import (
    context,
    csrf_ok,
    csrf_token,
    message,
    offload,
    page,
    read_form,
    set_csrf,
)

log = logging.getLogger(__name__)


def subscribe_page(
    request: Request,
    status: int = 200,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    """The form, filled in with ``values`` and showing ``errors`` when it is sent back."""
    ctx = context(request)
    digest_ids = ctx.digest_ids()
    values = values or {"email": "", "name": "", "digests": [], "tags": []}
    wanted = set(values["digests"]) or set(request.query_params.getlist("digest"))
    if len(digest_ids) == 1:
        wanted = set(digest_ids)
    token, new = csrf_token(request)
    response = page(
        request,
        "subscribe.html.j2",
        "Subscribe",
        status,
        csrf=token,
        values=values,
        errors=errors or {},
        digests=[
            {"id": d.id, "title": d.title, "checked": d.id in wanted} for d in ctx.config.digests
        ],
        tags=[{"name": t, "checked": t in values["tags"]} for t in known_tags(ctx.app)],
    )
    if new:
        set_csrf(response, request, token)
    return response


def sent_page(request: Request) -> Response:
    """The "check your inbox" page: the answer to every accepted form, sent or not."""
    return message(
        request,
        "Check your inbox",
        [
            "If the address is valid, an email with a confirmation link is on its way to it.",
            f"Open it and press the button to start your subscription; the link works for "
            f"{subscriptions.CONFIRM_MAX_AGE.days} days. Nothing is sent to you before that.",
        ],
    )


def start_signup(request: Request, form: Form) -> None:
    """Check the form and, within the per-address limit, record it and mail the link."""
    ctx = context(request)
    subscribe(
        ctx.app,
        subscriptions.first(form, "email"),
        subscriptions.first(form, "name"),
        form.get("digest", []),
        form.get("tag", []),
        allow=ctx.per_address.hit,
    )


async def subscribe_get(request: Request) -> Response:
    """``GET /subscribe``: the form."""
    return await offload(subscribe_page, request)


async def subscribe_post(request: Request) -> Response:
    """``POST /subscribe``: start a double opt-in sign-up."""
    form = await read_form(request)
    if not context(request).per_ip.hit(context(request).client_ip(request)):
        return message(
            request,
            "Too many attempts",
            ["Too many sign-ups came from your network in a short time. Please try again later."],
            429,
        )
    values = {
        "email": subscriptions.first(form, "email")[:320],
        "name": subscriptions.first(form, "name")[:100],
        "digests": form.get("digest", []),
        "tags": form.get("tag", []),
    }
    if not await offload(csrf_ok, request, form):
        errors = {"csrf": "This form expired or came from somewhere else. Please send it again."}
        return await offload(subscribe_page, request, 400, values, errors)
    if subscriptions.first(form, "website").strip():
        return sent_page(request)  # the honeypot: a person never fills it in
    try:
        await offload(start_signup, request, form)
    except FormError as exc:
        return await offload(subscribe_page, request, 400, values, exc.errors)
    except PublisherError as exc:
        log.error("confirmation email not sent: %s", exc)
        return message(
            request,
            "Please try again later",
            [
                "We could not send the confirmation email just now. Please try again in a few minutes."
            ],
            503,
        )
    return sent_page(request)


def routes() -> list[BaseRoute]:
    """``GET`` and ``POST /subscribe``."""
    return [
        Route("/subscribe", subscribe_get, methods=["GET", "HEAD"]),
        Route("/subscribe", subscribe_post, methods=["POST"]),
    ]
