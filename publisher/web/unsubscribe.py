"""Leaving, ``/unsubscribe/<token>`` (store I/O), including the RFC 8058 one-click POST.

``GET`` shows a page with a button per choice (this newsletter, or everything); a form
``POST`` applies the choice. A ``POST`` whose body is ``List-Unsubscribe=One-Click``
(RFC 8058, sent by mail clients from the ``List-Unsubscribe-Post`` header) leaves the
newsletter the token names and answers in plain text: no cookie, no redirect, the same
answer every time. Unsubscribe links never expire.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.compose import subscriptions
from publisher.compose.links import TokenData, TokenError, read_token
from publisher.compose.subscriptions import Form
from publisher.services import signup
from publisher.web.common import (
    bad_link,
    context,
    message,
    no_longer_valid,
    offload,
    page,
    read_form,
)


def unsubscribe_token(request: Request, token: str) -> TokenData:
    """The data of an unsubscribe token; raises TokenError."""
    ctx = context(request)
    # Unsubscribe links never expire: an old email must still let its reader leave.
    return read_token(ctx.secret, token, subscriptions.UNSUBSCRIBE_PURPOSE, ctx.now())


def preferences_url(request: Request, subscriber_id: int) -> str:
    """A fresh link to the subscriber's preferences page."""
    ctx = context(request)
    return signup.link(ctx.app, subscriptions.PREFERENCES_PURPOSE, subscriber_id, "", ctx.now())


def unsubscribe_get_sync(request: Request, token: str) -> Response:
    """The page with the choices (or "you are unsubscribed" when there is nothing left)."""
    try:
        data = unsubscribe_token(request, token)
    except TokenError as exc:
        return bad_link(request, exc)
    ctx = context(request)
    subscriber = ctx.app.store.subscriber_by_id(data.subscriber_id)
    if subscriber is None:
        return no_longer_valid(request)
    if subscriber.status not in ("active", "pending"):
        return message(
            request, "You are unsubscribed", ["This address gets no more email from us."]
        )
    titles = ctx.digest_titles()
    digest = titles.get(data.digest_id) if data.digest_id in subscriber.digests else None
    return page(
        request,
        "unsubscribe.html.j2",
        "Unsubscribe",
        address=subscriptions.mask_address(subscriber.email),
        digest=digest,
        preferences_url=preferences_url(request, subscriber.id),
    )


def unsubscribe_post_sync(request: Request, token: str, form: Form) -> Response:
    """Leave the token's newsletter (one-click, or ``scope=digest``) or everything."""
    one_click = subscriptions.is_one_click(form)
    try:
        data = unsubscribe_token(request, token)
    except TokenError as exc:
        if one_click:
            return PlainTextResponse(f"{exc}\n", 400)
        return bad_link(request, exc)
    ctx = context(request)
    # One-click (RFC 8058) leaves the list the message came from, named by List-Id and
    # by the token; the page's buttons also offer leaving everything.
    scope = "digest" if one_click else subscriptions.first(form, "scope")
    digest = data.digest_id if scope == "digest" and data.digest_id else None
    subscriber = ctx.app.store.unsubscribe(data.subscriber_id, digest, ctx.now())
    if subscriber is None:
        if one_click:
            return PlainTextResponse("unknown subscriber\n", 404)
        return no_longer_valid(request)
    if one_click:
        # RFC 8058: no cookie, no login, no redirect; the same answer every time.
        return PlainTextResponse("unsubscribed\n", 200, headers={"Cache-Control": "no-store"})
    if digest and subscriber.status in ("active", "pending"):
        title = ctx.digest_titles().get(digest, digest)
        lines = [f"You will get no more {title}. Your other newsletters continue."]
    else:
        lines = ["You will get no more email from us. Sorry to see you go."]
    return message(
        request,
        "You are unsubscribed",
        lines,
        links=[{"href": preferences_url(request, subscriber.id), "text": "Your settings and data"}],
    )


async def unsubscribe_get(request: Request) -> Response:
    """``GET /unsubscribe/<token>``."""
    return await offload(unsubscribe_get_sync, request, request.path_params["token"])


async def unsubscribe_post(request: Request) -> Response:
    """``POST /unsubscribe/<token>``: the page's buttons, or RFC 8058 one-click."""
    form = await read_form(request)
    return await offload(unsubscribe_post_sync, request, request.path_params["token"], form)


def routes() -> list[BaseRoute]:
    """``GET`` and ``POST /unsubscribe/<token>``."""
    return [
        Route("/unsubscribe/{token}", unsubscribe_get, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
    ]
