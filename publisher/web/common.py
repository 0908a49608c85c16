"""What every subscriber page shares (no I/O of its own; the app it opens does store I/O).

The :class:`WebContext` the app factory keeps in ``request.app.state.web`` (the wired
App, opened on first use, the templates, the signing secret and the rate limiters);
rendering a page or a message; the signed double-submit CSRF cookie; the friendly
"bad link" page; and the error pages for 404, 405 and unexpected errors.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from publisher.app import App, open_app
from publisher.compose import render, subscriptions
from publisher.compose.links import TokenError
from publisher.compose.subscriptions import Form
from publisher.config import Config, parse_duration
from publisher.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

CSRF_COOKIE = "publisher_csrf"


class WebContext:
    """What the endpoints use: the wired :class:`~publisher.app.App` (opened on first
    use, so serving feeds never needs the store), templates, the secret and the limits."""

    def __init__(self, config: Config, app: App | None = None) -> None:
        self.config = config
        self._app = app
        self._secret: str | None = None
        self._templates: render.Templates | None = None
        self._lock = threading.Lock()
        window = float(parse_duration(config.web.rate_window, "[web] rate_window"))
        self.per_ip = RateLimiter(config.web.subscribe_per_ip, window)
        self.per_address = RateLimiter(config.web.subscribe_per_address, window)
        self._proxies = tuple(
            ipaddress.ip_network(p, strict=False) for p in config.web.trusted_proxies
        )

    @property
    def app(self) -> App:
        """The application (store, clock, transport), opened once."""
        with self._lock:
            if self._app is None:
                self._app = open_app(self.config)
            return self._app

    @property
    def templates(self) -> render.Templates:
        """The templates (``[site] templates_dir`` overrides ``templates/``)."""
        if self._app is not None:
            return self._app.templates
        if self._templates is None:
            self._templates = render.load_templates(self.config.site.templates_dir)
        return self._templates

    @property
    def secret(self) -> str:
        """The signing secret, read once."""
        if self._secret is None:
            self._secret = self.app.secret()
        return self._secret

    def now(self) -> datetime:
        """The application clock."""
        return self.app.clock()

    def client_ip(self, request: Request) -> str:
        """The client's address: the peer's, or, when the peer is one of ``[web]
        trusted_proxies``, the last ``X-Forwarded-For`` hop that is not a trusted proxy."""
        return client_ip(request, self._proxies)

    def digest_ids(self) -> list[str]:
        """The configured digests' ids, in order."""
        return [d.id for d in self.config.digests]

    def digest_titles(self) -> dict[str, str]:
        """Each configured digest's title by id."""
        return {d.id: d.title for d in self.config.digests}


def context(request: Request) -> WebContext:
    """The :class:`WebContext` of the app serving ``request``."""
    web: WebContext = request.app.state.web
    return web


async def offload(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking ``fn(*args)`` (store, transport) in the thread pool."""
    return await run_in_threadpool(fn, *args)


def root(request: Request) -> str:
    """The relative way from this page back to the app's root (works behind a path prefix)."""
    depth = request.url.path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def page(
    request: Request,
    template: str,
    title: str,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """The page ``templates/web/<template>`` rendered with ``values``; never cached."""
    ctx = context(request)
    html = ctx.templates.env.get_template(f"web/{template}").render(
        site=ctx.config.site, root=root(request), title=title, **values
    )
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


def message(
    request: Request,
    title: str,
    lines: Sequence[str],
    status: int = 200,
    links: Sequence[dict[str, str]] = (),
) -> HTMLResponse:
    """A page of a few ``lines`` of text and ``links`` (``href``, ``text``)."""
    return page(request, "message.html.j2", title, status, lines=list(lines), links=list(links))


def bad_link(request: Request, exc: Exception, status: int = 400) -> HTMLResponse:
    """The friendly page for a link that does not work (bad, expired or used up)."""
    return message(
        request,
        "This link does not work",
        [
            f"Sorry: {exc}." if isinstance(exc, TokenError) else str(exc),
            "Links in our emails are personal; copy the whole link, or use the one in a newer email.",
        ],
        status,
        links=[{"href": f"{root(request)}subscribe", "text": "Sign up again"}],
    )


def no_longer_valid(request: Request) -> HTMLResponse:
    """404: the link was signed by us, but its subscriber is gone."""
    return bad_link(request, TokenError("this link is no longer valid"), 404)


async def read_form(request: Request) -> Form:
    """The request body's form fields (empty when it is not a form)."""
    return subscriptions.parse_form(await request.body(), request.headers.get("content-type", ""))


# -- CSRF: a signed double-submit cookie --------------------------------------------------


def set_csrf(response: Response, request: Request, token: str) -> None:
    """Set the CSRF cookie (strict same-site, HTTP only, secure over HTTPS)."""
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=int(subscriptions.CSRF_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def csrf_token(request: Request) -> tuple[str, bool]:
    """The visitor's CSRF token (from the cookie when still valid) and whether it is new."""
    ctx = context(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    if subscriptions.csrf_valid(ctx.secret, cookie, ctx.now()):
        return str(cookie), False
    return subscriptions.make_csrf(ctx.secret, secrets.token_urlsafe(16), ctx.now()), True


def csrf_ok(request: Request, form: Form) -> bool:
    """Whether the form's ``csrf`` field matches the visitor's valid cookie."""
    ctx = context(request)
    return subscriptions.csrf_check(
        ctx.secret,
        request.cookies.get(CSRF_COOKIE),
        subscriptions.first(form, "csrf"),
        ctx.now(),
    )


# -- error pages ------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and other HTTP errors as a page."""
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    if code == 404:
        return message(request, "Page not found", ["There is nothing at this address."], 404)
    if code == 405:
        return message(request, "Not allowed", ["This page cannot be used that way."], 405)
    return message(request, "Something went wrong", ["Please try again."], code)


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected error: logged, and a page without a stack trace."""
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    try:
        return message(
            request,
            "Something went wrong",
            ["Sorry, please try again in a few minutes."],
            500,
        )
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return PlainTextResponse("internal error\n", 500)


def error_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Friendly pages for 404, 405 and unexpected errors: never a stack trace."""
    return {HTTPException: http_error, Exception: server_error}


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    """Whether ``address`` parses and falls in one of ``proxies``."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(request: Request, proxies: Sequence[Network]) -> str:
    """The address to rate-limit and audit: the TCP peer, unless the peer is a trusted proxy.

    Then the ``X-Forwarded-For`` chain is read from the right (the hop nearest us) and the
    first address that is not itself a trusted proxy wins. Only the trusted hops can have
    written the entries we read, so a client cannot choose its address by sending the
    header itself; untrusted peers' headers are ignored altogether.
    """
    peer = request.client.host if request.client else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from a proxy's client: fall back to what we know
    return peer
