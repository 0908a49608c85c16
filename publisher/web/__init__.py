"""The web endpoints (HTTP I/O): a Starlette app built by :func:`create_app`.

For feed readers it serves the generated feeds folder under ``/feeds/`` (and the "view in
browser" archive under ``/archive/``): the right ``Content-Type`` per format, a weak
``ETag`` (a hash of the bytes) and ``Last-Modified`` (the file's mtime, which the writers
keep for unchanged files), ``304 Not Modified`` on ``If-None-Match`` /
``If-Modified-Since``, and gzip for clients that accept it.

For subscribers it is the double opt-in sign-up (``/subscribe``, ``/confirm/<token>``),
the RFC 8058 one-click unsubscribe (``/unsubscribe/<token>``) and the preferences page
(``/preferences/<token>``: digests, frequency, topics, name, JSON export, erasure).
Pages are server-rendered Jinja2 (``templates/web/``) with no script. Every response
carries security headers (a CSP that allows no script, ``nosniff``, ``no-referrer``),
request bodies are capped, and bad tokens get a friendly 400/404 page. The pure rules
live in :mod:`publisher.compose.subscriptions`; the store and transport work in
:mod:`publisher.services.signup` and :class:`publisher.store.Store`.

To add endpoints, write a function ``(config) -> list[BaseRoute]`` and add it to
:data:`ROUTE_FACTORIES`, or pass routes to :func:`create_app` as ``extra_routes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.app import App, open_app
from publisher.compose import render, subscriptions
from publisher.compose.links import TokenData, TokenError, read_token
from publisher.compose.planning import FREQUENCIES
from publisher.compose.subscriptions import Form, FormError
from publisher.config import Config, parse_duration
from publisher.errors import PublisherError
from publisher.models import Subscriber
from publisher.services import signup
from publisher.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

FEEDS_PREFIX = "/feeds"
CACHE_CONTROL = "public, max-age=300"
# File name endings and their media types, most specific first.
MEDIA_TYPES: tuple[tuple[str, str], ...] = (
    ("rss.xml", "application/rss+xml; charset=utf-8"),
    ("atom.xml", "application/atom+xml; charset=utf-8"),
    (".json", "application/feed+json; charset=utf-8"),
    (".opml", "text/x-opml; charset=utf-8"),
    (".html", "text/html; charset=utf-8"),
    (".xml", "application/xml; charset=utf-8"),
    (".txt", "text/plain; charset=utf-8"),
)


def media_type(name: str) -> str | None:
    """The Content-Type to serve the file ``name`` with (None: not a file we serve)."""
    for ending, value in MEDIA_TYPES:
        if name.endswith(ending):
            return value
    return None


class _Validators:
    """ETags of served files, cached by (path, inode, mtime, size); thread-safe."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.cache: dict[tuple[str, int, int, int], str] = {}
        self.lock = threading.Lock()

    def etag(self, key: tuple[str, int, int, int], data: bytes) -> str:
        with self.lock:
            tag = self.cache.get(key)
            if tag is None:
                if len(self.cache) >= self.limit:
                    self.cache.clear()
                tag = f'W/"{hashlib.sha256(data).hexdigest()[:32]}"'
                self.cache[key] = tag
            return tag


def _not_modified(request: Request, etag: str, mtime: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        wanted = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in wanted or etag.removeprefix("W/") in wanted
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return mtime.replace(microsecond=0) <= since
    return False


# -- static folders: /feeds/ and /archive/ --------------------------------------------

# Files we serve were written by us, but archive pages hold email HTML (inline styles,
# remote images): allow those, never script.
STATIC_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def static_routes(prefix: str, folder: Path) -> list[BaseRoute]:
    """Routes serving the files of ``folder`` under ``prefix/``, with HTTP validators."""
    root = folder.resolve()
    validators = _Validators()

    def serve_file(request: Request) -> Response:
        rel = request.path_params.get("path", "")
        parts = [p for p in rel.split("/") if p]
        if any(p.startswith(".") for p in parts):
            return Response("not found\n", 404, media_type="text/plain")
        path = root.joinpath(*parts)
        if path.is_dir():
            path = path / "index.html"
        try:
            path = path.resolve(strict=True)
        except (FileNotFoundError, RuntimeError, OSError):
            return Response("not found\n", 404, media_type="text/plain")
        kind = media_type(path.name)
        if kind is None or not path.is_relative_to(root) or not path.is_file():
            return Response("not found\n", 404, media_type="text/plain")
        stat = path.stat()
        data = path.read_bytes()
        key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        etag = validators.etag(key, data)
        mtime = datetime.fromtimestamp(stat.st_mtime, UTC)
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            "Cache-Control": CACHE_CONTROL,
            "Content-Security-Policy": STATIC_CSP,
        }
        if _not_modified(request, etag, mtime):
            return Response(status_code=304, headers=headers)
        return Response(data, headers=headers, media_type=kind)

    def to_folder(request: Request) -> Response:
        return RedirectResponse(f"{prefix}/", status_code=308)

    return [
        Route(prefix, to_folder, methods=["GET", "HEAD"]),
        Route(prefix + "/{path:path}", serve_file, methods=["GET", "HEAD"]),
    ]


def feed_routes(config: Config) -> list[BaseRoute]:
    """Routes serving ``[feeds] output_dir`` under ``/feeds/``."""
    return static_routes(FEEDS_PREFIX, config.feeds.output_dir)


def archive_routes(config: Config) -> list[BaseRoute]:
    """Routes serving the "view in browser" pages (``[web] archive_dir``) under ``/archive/``."""
    return static_routes("/archive", config.web.archive_dir)


# -- security: headers and the body cap -------------------------------------------------

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class GuardMiddleware:
    """Adds the security headers to every response and caps request bodies (413).

    A body is read whole (up to ``max_body``) before the endpoint runs, so an oversized
    one is refused whether or not it declared its ``Content-Length``.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with headers added and the body checked."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        if scope["method"] in BODY_METHODS:
            declared = dict(scope["headers"]).get(b"content-length")
            too_big = declared is not None and (
                not declared.isdigit() or int(declared) > self.max_body
            )
            chunks: list[bytes] = []
            size = 0
            more = not too_big
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    too_big = True
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
            if too_big:
                response = PlainTextResponse(
                    f"request body too large (at most {self.max_body} bytes)\n", 413
                )
                await response(scope, receive, send_guarded)
                return
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_guarded)
            return
        await self.app(scope, receive, send_guarded)


# -- the subscribers' pages ---------------------------------------------------------------

CSRF_COOKIE = "publisher_csrf"
FREQUENCY_LABELS = {
    "every": "Every issue",
    "daily": "At most one email a day (a daily round-up)",
    "weekly": "One email a week (a weekly round-up)",
}


class Services:
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


def _root(request: Request) -> str:
    """The relative way from this page back to the app's root (works behind a path prefix)."""
    depth = request.url.path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def _page(
    services: Services,
    request: Request,
    template: str,
    title: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = services.templates.env.get_template(f"web/{template}").render(
        site=services.config.site, root=_root(request), title=title, **context
    )
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


def _message(
    services: Services,
    request: Request,
    title: str,
    lines: Sequence[str],
    status: int = 200,
    links: Sequence[dict[str, str]] = (),
) -> HTMLResponse:
    return _page(
        services, request, "message.html.j2", title, status, lines=list(lines), links=list(links)
    )


async def _form(request: Request) -> Form:
    return subscriptions.parse_form(await request.body(), request.headers.get("content-type", ""))


def _set_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=int(subscriptions.CSRF_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _csrf_token(services: Services, request: Request) -> tuple[str, bool]:
    """The visitor's CSRF token (from the cookie when still valid) and whether it is new."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if subscriptions.csrf_valid(services.secret, cookie, services.now()):
        return str(cookie), False
    return subscriptions.make_csrf(services.secret, secrets.token_urlsafe(16), services.now()), True


def _csrf_ok(services: Services, request: Request, form: Form) -> bool:
    return subscriptions.csrf_check(
        services.secret,
        request.cookies.get(CSRF_COOKIE),
        subscriptions.first(form, "csrf"),
        services.now(),
    )


def _bad_link(
    services: Services, request: Request, exc: Exception, status: int = 400
) -> HTMLResponse:
    return _message(
        services,
        request,
        "This link does not work",
        [
            f"Sorry: {exc}." if isinstance(exc, TokenError) else str(exc),
            "Links in our emails are personal; copy the whole link, or use the one in a newer email.",
        ],
        status,
        links=[{"href": f"{_root(request)}subscribe", "text": "Sign up again"}],
    )


def _known_tags(services: Services) -> list[str]:
    tags = set(services.app.store.all_tags())
    for digest in services.config.digests:
        tags.update(digest.tags)
    return sorted(tags, key=str.lower)


def _digest_titles(services: Services) -> dict[str, str]:
    return {d.id: d.title for d in services.config.digests}


def subscriber_routes(services: Services) -> list[BaseRoute]:
    """``/subscribe``, ``/confirm/<token>``, ``/unsubscribe/<token>``, ``/preferences/<token>``."""
    config = services.config
    digest_ids = [d.id for d in config.digests]

    async def offload(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    # -- sign-up ------------------------------------------------------------------------

    def subscribe_page(
        request: Request,
        status: int = 200,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Response:
        values = values or {"email": "", "name": "", "digests": [], "tags": []}
        wanted = set(values["digests"]) or set(request.query_params.getlist("digest"))
        if len(digest_ids) == 1:
            wanted = set(digest_ids)
        token, new = _csrf_token(services, request)
        response = _page(
            services,
            request,
            "subscribe.html.j2",
            "Subscribe",
            status,
            csrf=token,
            values=values,
            errors=errors or {},
            digests=[
                {"id": d.id, "title": d.title, "checked": d.id in wanted} for d in config.digests
            ],
            tags=[{"name": t, "checked": t in values["tags"]} for t in _known_tags(services)],
        )
        if new:
            _set_csrf(response, request, token)
        return response

    def sent_page(request: Request) -> Response:
        return _message(
            services,
            request,
            "Check your inbox",
            [
                "If the address is valid, an email with a confirmation link is on its way to it.",
                f"Open it and press the button to start your subscription; the link works for "
                f"{subscriptions.CONFIRM_MAX_AGE.days} days. Nothing is sent to you before that.",
            ],
        )

    def start_signup(form: subscriptions.SignupForm) -> None:
        app = services.app
        transport = app.new_transport()
        transport.open()
        try:
            signup.request(app, transport, form.email, form.name, form.digests, form.tags)
        finally:
            transport.close()

    async def subscribe_get(request: Request) -> Response:
        return await offload(subscribe_page, request)

    async def subscribe_post(request: Request) -> Response:
        form = await _form(request)
        client = request.client.host if request.client else "unknown"
        if not services.per_ip.hit(client):
            return _message(
                services,
                request,
                "Too many attempts",
                [
                    "Too many sign-ups came from your network in a short time. Please try again later."
                ],
                429,
            )
        values = {
            "email": subscriptions.first(form, "email")[:320],
            "name": subscriptions.first(form, "name")[:100],
            "digests": form.get("digest", []),
            "tags": form.get("tag", []),
        }
        if not await offload(_csrf_ok, services, request, form):
            errors = {
                "csrf": "This form expired or came from somewhere else. Please send it again."
            }
            return await offload(subscribe_page, request, 400, values, errors)
        if subscriptions.first(form, "website").strip():
            return sent_page(request)  # the honeypot: a person never fills it in
        try:
            checked = await offload(
                lambda: subscriptions.read_signup(form, digest_ids, _known_tags(services))
            )
        except FormError as exc:
            return await offload(subscribe_page, request, 400, values, exc.errors)
        if services.per_address.hit(subscriptions.email_hash(checked.email)):
            try:
                await offload(start_signup, checked)
            except PublisherError as exc:
                log.error("confirmation email not sent: %s", exc)
                return _message(
                    services,
                    request,
                    "Please try again later",
                    [
                        "We could not send the confirmation email just now. Please try again in a few minutes."
                    ],
                    503,
                )
        return sent_page(request)

    # -- confirm --------------------------------------------------------------------------

    def confirm_state(request: Request, token: str) -> tuple[TokenData, Subscriber] | Response:
        try:
            data = read_token(
                services.secret,
                token,
                subscriptions.CONFIRM_PURPOSE,
                services.now(),
                subscriptions.CONFIRM_MAX_AGE,
            )
        except TokenError as exc:
            return _bad_link(services, request, exc)
        subscriber = services.app.store.subscriber_by_id(data.subscriber_id)
        if subscriber is None or subscriber.status == "erased":
            return _bad_link(services, request, TokenError("this link is no longer valid"), 404)
        return data, subscriber

    def already_or_stale(request: Request, subscriber: Subscriber) -> Response:
        if subscriber.status == "active":
            return confirmed_page(request, subscriber, "You are already subscribed")
        return _bad_link(
            services,
            request,
            TokenError("this link was already used or replaced by a newer one"),
        )

    def confirmed_page(request: Request, subscriber: Subscriber, title: str) -> Response:
        titles = _digest_titles(services)
        chosen = ", ".join(titles.get(d, d) for d in subscriber.digests) or "our newsletter"
        url = signup.link(
            services.app, subscriptions.PREFERENCES_PURPOSE, subscriber.id, "", services.now()
        )
        return _message(
            services,
            request,
            title,
            [f"{subscriptions.mask_address(subscriber.email)} will receive {chosen}."],
            links=[{"href": url, "text": "Choose topics and how often"}],
        )

    def confirm_get_sync(request: Request, token: str) -> Response:
        state = confirm_state(request, token)
        if isinstance(state, Response):
            return state
        data, subscriber = state
        pending = services.app.store.pending_signup(subscriber.id)
        if pending is None or pending["nonce"] != data.digest_id:
            return already_or_stale(request, subscriber)
        titles = _digest_titles(services)
        return _page(
            services,
            request,
            "confirm.html.j2",
            "Confirm your subscription",
            address=subscriptions.mask_address(subscriber.email),
            digests=[titles.get(d, d) for d in pending["digests"]],
        )

    def confirm_post_sync(request: Request, token: str) -> Response:
        state = confirm_state(request, token)
        if isinstance(state, Response):
            return state
        data, subscriber = state
        confirmed = signup.confirm(services.app, subscriber.id, data.digest_id)
        if confirmed is None:
            return already_or_stale(request, subscriber)
        return confirmed_page(request, confirmed, "You are subscribed")

    async def confirm_get(request: Request) -> Response:
        return await offload(confirm_get_sync, request, request.path_params["token"])

    async def confirm_post(request: Request) -> Response:
        await request.body()
        return await offload(confirm_post_sync, request, request.path_params["token"])

    # -- unsubscribe ----------------------------------------------------------------------

    def unsubscribe_token(token: str) -> TokenData:
        # Unsubscribe links never expire: an old email must still let its reader leave.
        return read_token(services.secret, token, subscriptions.UNSUBSCRIBE_PURPOSE, services.now())

    def unsubscribe_get_sync(request: Request, token: str) -> Response:
        try:
            data = unsubscribe_token(token)
        except TokenError as exc:
            return _bad_link(services, request, exc)
        subscriber = services.app.store.subscriber_by_id(data.subscriber_id)
        if subscriber is None:
            return _bad_link(services, request, TokenError("this link is no longer valid"), 404)
        if subscriber.status not in ("active", "pending"):
            return _message(
                services,
                request,
                "You are unsubscribed",
                ["This address gets no more email from us."],
            )
        titles = _digest_titles(services)
        digest = titles.get(data.digest_id) if data.digest_id in subscriber.digests else None
        prefs = signup.link(
            services.app, subscriptions.PREFERENCES_PURPOSE, subscriber.id, "", services.now()
        )
        return _page(
            services,
            request,
            "unsubscribe.html.j2",
            "Unsubscribe",
            address=subscriptions.mask_address(subscriber.email),
            digest=digest,
            preferences_url=prefs,
        )

    def unsubscribe_post_sync(request: Request, token: str, form: Form) -> Response:
        one_click = subscriptions.is_one_click(form)
        try:
            data = unsubscribe_token(token)
        except TokenError as exc:
            if one_click:
                return PlainTextResponse(f"{exc}\n", 400)
            return _bad_link(services, request, exc)
        # One-click (RFC 8058) leaves the list the message came from, named by List-Id and
        # by the token; the page's buttons also offer leaving everything.
        scope = "digest" if one_click else subscriptions.first(form, "scope")
        digest = data.digest_id if scope == "digest" and data.digest_id else None
        subscriber = services.app.store.unsubscribe(data.subscriber_id, digest, services.now())
        if subscriber is None:
            if one_click:
                return PlainTextResponse("unknown subscriber\n", 404)
            return _bad_link(services, request, TokenError("this link is no longer valid"), 404)
        if one_click:
            # RFC 8058: no cookie, no login, no redirect; the same answer every time.
            return PlainTextResponse("unsubscribed\n", 200, headers={"Cache-Control": "no-store"})
        if digest and subscriber.status in ("active", "pending"):
            title = _digest_titles(services).get(digest, digest)
            lines = [f"You will get no more {title}. Your other newsletters continue."]
        else:
            lines = ["You will get no more email from us. Sorry to see you go."]
        prefs = signup.link(
            services.app, subscriptions.PREFERENCES_PURPOSE, subscriber.id, "", services.now()
        )
        return _message(
            services,
            request,
            "You are unsubscribed",
            lines,
            links=[{"href": prefs, "text": "Your settings and data"}],
        )

    async def unsubscribe_get(request: Request) -> Response:
        return await offload(unsubscribe_get_sync, request, request.path_params["token"])

    async def unsubscribe_post(request: Request) -> Response:
        form = await _form(request)
        return await offload(unsubscribe_post_sync, request, request.path_params["token"], form)

    # -- preferences ----------------------------------------------------------------------

    def preferences_state(request: Request, token: str) -> Subscriber | Response:
        try:
            data = read_token(
                services.secret, token, subscriptions.PREFERENCES_PURPOSE, services.now()
            )
        except TokenError as exc:
            return _bad_link(services, request, exc)
        subscriber = services.app.store.subscriber_by_id(data.subscriber_id)
        if subscriber is None or subscriber.status == "erased":
            return _bad_link(services, request, TokenError("this link is no longer valid"), 404)
        return subscriber

    def preferences_page(
        request: Request,
        token: str,
        subscriber: Subscriber,
        status: int = 200,
        notice: str = "",
        errors: dict[str, str] | None = None,
    ) -> Response:
        rows = services.app.store.subscription_rows(subscriber.id)
        chosen = {r["digest_id"] for r in rows}
        tags = {t for r in rows for t in r["tags"]}
        frequency = rows[0]["frequency"] if rows else FREQUENCIES[0]
        csrf, new = _csrf_token(services, request)
        base = f"{_root(request)}preferences/{token}"
        response = _page(
            services,
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
                {"id": d.id, "title": d.title, "checked": d.id in chosen} for d in config.digests
            ],
            frequencies=[
                {"value": f, "label": FREQUENCY_LABELS.get(f, f), "checked": f == frequency}
                for f in FREQUENCIES
            ],
            tags=[{"name": t, "checked": t in tags} for t in _known_tags(services)],
            export_url=f"{base}/export",
            delete_url=f"{base}/delete",
        )
        if new:
            _set_csrf(response, request, csrf)
        return response

    def preferences_get_sync(request: Request, token: str) -> Response:
        state = preferences_state(request, token)
        if isinstance(state, Response):
            return state
        return preferences_page(request, token, state)

    def preferences_post_sync(request: Request, token: str, form: Form) -> Response:
        state = preferences_state(request, token)
        if isinstance(state, Response):
            return state
        subscriber = state
        if not _csrf_ok(services, request, form):
            errors = {"csrf": "This form expired. Nothing was changed; please save again."}
            return preferences_page(request, token, subscriber, 400, errors=errors)
        try:
            wanted = subscriptions.read_preferences(
                form, digest_ids, _known_tags(services), FREQUENCIES
            )
        except FormError as exc:
            return preferences_page(request, token, subscriber, 400, errors=exc.errors)
        app = services.app
        active = subscriber.status == "active"
        updated = app.store.update_preferences(
            subscriber.id,
            wanted.name,
            wanted.digests if active else None,
            wanted.tags,
            services.now(),
        )
        if updated is None:
            return _bad_link(services, request, TokenError("this link is no longer valid"), 404)
        if updated.status == "active" and updated.digests:
            from publisher.services.cadence import set_frequency

            set_frequency(app, updated.id, list(updated.digests), wanted.frequency)
        if active and updated.status != "active":
            notice = "Saved. You are unsubscribed from everything."
        else:
            notice = "Saved."
        return preferences_page(request, token, updated, notice=notice)

    def export_sync(request: Request, token: str) -> Response:
        state = preferences_state(request, token)
        if isinstance(state, Response):
            return state
        store = services.app.store
        document = subscriptions.export_document(
            state,
            store.subscription_rows(state.id),
            store.subscriber_history(state.id),
            services.now(),
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
        state = preferences_state(request, token)
        if isinstance(state, Response):
            return state
        if not _csrf_ok(services, request, form):
            errors = {"csrf": "This form expired. Nothing was deleted; please try again."}
            return preferences_page(request, token, state, 400, errors=errors)
        if subscriptions.first(form, "confirm") != "yes":
            errors = {"confirm": "Tick the box to confirm that your data should be deleted."}
            return preferences_page(request, token, state, 400, errors=errors)
        services.app.store.erase_subscriber(
            state.id, subscriptions.email_hash(state.email), services.now()
        )
        return _message(
            services,
            request,
            "Your data was deleted",
            [
                "We deleted your address, name and settings, and you will get no more email.",
                "We keep only a one-way hash of the address, so that it is never added back by mistake.",
            ],
        )

    async def preferences_get(request: Request) -> Response:
        return await offload(preferences_get_sync, request, request.path_params["token"])

    async def preferences_post(request: Request) -> Response:
        form = await _form(request)
        return await offload(preferences_post_sync, request, request.path_params["token"], form)

    async def preferences_export(request: Request) -> Response:
        return await offload(export_sync, request, request.path_params["token"])

    async def preferences_delete(request: Request) -> Response:
        form = await _form(request)
        return await offload(delete_sync, request, request.path_params["token"], form)

    # -- the rest -------------------------------------------------------------------------

    def stylesheet(request: Request) -> Response:
        css = services.templates.env.loader.get_source(services.templates.env, "web/web.css")[0]  # type: ignore[union-attr]
        return Response(
            css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    def home(request: Request) -> Response:
        return RedirectResponse("subscribe", status_code=307)

    return [
        Route("/", home, methods=["GET", "HEAD"]),
        Route("/static/web.css", stylesheet, methods=["GET", "HEAD"]),
        Route("/subscribe", subscribe_get, methods=["GET", "HEAD"]),
        Route("/subscribe", subscribe_post, methods=["POST"]),
        Route("/confirm/{token}", confirm_get, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", confirm_post, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_get, methods=["GET", "HEAD"]),
        Route("/unsubscribe/{token}", unsubscribe_post, methods=["POST"]),
        Route("/preferences/{token}", preferences_get, methods=["GET", "HEAD"]),
        Route("/preferences/{token}", preferences_post, methods=["POST"]),
        Route("/preferences/{token}/export", preferences_export, methods=["GET", "HEAD"]),
        Route("/preferences/{token}/delete", preferences_delete, methods=["POST"]),
    ]


def _error_handlers(
    services: Services,
) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Friendly pages for 404, 405 and unexpected errors: never a stack trace."""

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 404:
            return _message(
                services, request, "Page not found", ["There is nothing at this address."], 404
            )
        if code == 405:
            return _message(
                services, request, "Not allowed", ["This page cannot be used that way."], 405
            )
        return _message(services, request, "Something went wrong", ["Please try again."], code)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        try:
            return _message(
                services,
                request,
                "Something went wrong",
                ["Sorry, please try again in a few minutes."],
                500,
            )
        except Exception:  # noqa: BLE001 - the error page itself must never fail
            return PlainTextResponse("internal error\n", 500)

    return {HTTPException: http_error, Exception: server_error}


# Each factory adds its routes to the app; append yours here.
ROUTE_FACTORIES: list[Callable[[Config], list[BaseRoute]]] = [feed_routes, archive_routes]


def create_app(
    config: Config, extra_routes: Sequence[BaseRoute] = (), *, app: App | None = None
) -> Starlette:
    """The web application for ``config``: every factory's routes, the subscriber pages
    (using ``app``, else an App opened on first use) and ``extra_routes``."""
    services = Services(config, app)
    routes: list[BaseRoute] = [r for factory in ROUTE_FACTORIES for r in factory(config)]
    routes.extend(subscriber_routes(services))
    routes.extend(extra_routes)
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(GuardMiddleware, max_body=config.web.max_body_bytes),
            Middleware(GZipMiddleware, minimum_size=500),
        ],
        exception_handlers=_error_handlers(services),
    )


def app_from_environment() -> Starlette:
    """The web application of the config named by ``$PUBLISHER_CONFIG`` (else ./config.toml).

    For ASGI servers: ``publisher serve`` runs it, and so does
    ``uvicorn --factory publisher.web:app_from_environment``.
    """
    from publisher.config import default_path, load

    return create_app(load(default_path()))
