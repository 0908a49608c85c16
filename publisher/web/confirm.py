"""The confirmation link, ``/confirm/<token>`` (store I/O): the second step of double opt-in.

``GET`` only shows what will be confirmed, with a button (mail scanners follow links);
``POST`` applies the sign-up request the token names. A token is good for
:data:`~publisher.compose.subscriptions.CONFIRM_MAX_AGE`, and only the newest request's
link confirms.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.compose import subscriptions
from publisher.compose.links import TokenData, TokenError, read_token
from publisher.models import Subscriber
from publisher.services import signup
from publisher.web.common import bad_link, context, message, no_longer_valid, offload, page


def confirm_state(request: Request, token: str) -> tuple[TokenData, Subscriber] | Response:
    """The token's data and its subscriber, or the page saying why the link does not work."""
    ctx = context(request)
    try:
        data = read_token(
            ctx.secret,
            token,
            subscriptions.CONFIRM_PURPOSE,
            ctx.now(),
            subscriptions.CONFIRM_MAX_AGE,
        )
    except TokenError as exc:
        return bad_link(request, exc)
    subscriber = ctx.app.store.subscriber_by_id(data.subscriber_id)
    if subscriber is None or subscriber.status == "erased":
        return no_longer_valid(request)
    return data, subscriber


def confirmed_page(request: Request, subscriber: Subscriber, title: str) -> Response:
    """What ``subscriber`` now receives, with the link to their preferences."""
    ctx = context(request)
    titles = ctx.digest_titles()
    chosen = ", ".join(titles.get(d, d) for d in subscriber.digests) or "our newsletter"
    url = signup.link(ctx.app, subscriptions.PREFERENCES_PURPOSE, subscriber.id, "", ctx.now())
    return message(
        request,
        title,
        [f"{subscriptions.mask_address(subscriber.email)} will receive {chosen}."],
        links=[{"href": url, "text": "Choose topics and how often"}],
    )


def already_or_stale(request: Request, subscriber: Subscriber) -> Response:
    """A request no longer open: fine if the subscriber is active, else a stale link."""
    if subscriber.status == "active":
        return confirmed_page(request, subscriber, "You are already subscribed")
    return bad_link(request, TokenError("this link was already used or replaced by a newer one"))


def confirm_get_sync(request: Request, token: str) -> Response:
    """The confirmation page: the masked address and the digests asked for."""
    state = confirm_state(request, token)
    if isinstance(state, Response):
        return state
    data, subscriber = state
    ctx = context(request)
    pending = ctx.app.store.pending_signup(subscriber.id)
    if pending is None or pending["nonce"] != data.digest_id:
        return already_or_stale(request, subscriber)
    titles = ctx.digest_titles()
    return page(
        request,
        "confirm.html.j2",
        "Confirm your subscription",
        address=subscriptions.mask_address(subscriber.email),
        digests=[titles.get(d, d) for d in pending["digests"]],
    )


def confirm_post_sync(request: Request, token: str) -> Response:
    """Apply the sign-up request the token names."""
    state = confirm_state(request, token)
    if isinstance(state, Response):
        return state
    data, subscriber = state
    confirmed = signup.confirm(context(request).app, subscriber.id, data.digest_id)
    if confirmed is None:
        return already_or_stale(request, subscriber)
    return confirmed_page(request, confirmed, "You are subscribed")


async def confirm_get(request: Request) -> Response:
    """``GET /confirm/<token>``."""
    return await offload(confirm_get_sync, request, request.path_params["token"])


async def confirm_post(request: Request) -> Response:
    """``POST /confirm/<token>``."""
    await request.body()
    return await offload(confirm_post_sync, request, request.path_params["token"])


def routes() -> list[BaseRoute]:
    """``GET`` and ``POST /confirm/<token>``."""
    return [
        Route("/confirm/{token}", confirm_get, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", confirm_post, methods=["POST"]),
    ]
