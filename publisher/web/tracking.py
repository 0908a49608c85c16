"""Tracked links and the open pixel, ``/r/<token>`` and ``/o/<token>`` (store I/O).

``/r/<token>`` answers 302 to the URL of the stored link the token names, with the UTM
parameters it was stored with; the target never comes from the request, so this is no open
redirect. A token that is malformed or altered gets a 400 page, a well-signed one naming no
stored link a 404 page. An expired token, or one of an erased subscriber, still redirects
(old emails keep working) but is not counted. ``/o/<token>`` answers a 1x1 GIF. Both are
never cached, so a second click is a second request. Judging and counting the hit is
:mod:`publisher.services.engagement`'s.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.compose.links import TokenError
from publisher.services import engagement
from publisher.web.common import bad_link, context, offload

_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


async def _follow(request: Request, pixel: bool) -> engagement.Followed | Response:
    ctx = context(request)
    try:
        return await offload(
            lambda: engagement.follow(
                ctx.app,
                request.path_params["token"],
                method=request.method,
                ip=ctx.client_ip(request),
                user_agent=request.headers.get("user-agent", "")[:500],
                pixel=pixel,
            )
        )
    except TokenError as exc:
        return bad_link(request, exc, 400)
    except engagement.UnknownLink as exc:
        return bad_link(request, exc, 404)


async def redirect(request: Request) -> Response:
    """A tracked article link (or the canary): 302 to the stored URL."""
    followed = await _follow(request, pixel=False)
    if isinstance(followed, Response):
        return followed
    return RedirectResponse(followed.url, status_code=302, headers=_NO_STORE)


async def pixel(request: Request) -> Response:
    """The open pixel: a transparent 1x1 GIF."""
    followed = await _follow(request, pixel=True)
    if isinstance(followed, Response):
        return followed
    return Response(engagement.PIXEL_GIF, media_type="image/gif", headers=_NO_STORE)


def routes() -> list[BaseRoute]:
    """``/r/<token>`` and ``/o/<token>`` (GET and HEAD; a HEAD counts as automated)."""
    return [
        Route("/r/{token}", redirect, methods=["GET", "HEAD"]),
        Route("/o/{token}", pixel, methods=["GET", "HEAD"]),
    ]
