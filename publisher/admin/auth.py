"""Who is asking, and may they (no I/O of its own; sessions are read through services).

- :func:`require` wraps an endpoint: it needs a full session (else the login page), a role
  (else 403) and, on a POST, the session's CSRF token (else 403);
- :func:`actor` is the :class:`~publisher.services.audit.Actor` of the request (the
  operator's address and the client IP, ``[web] trusted_proxies`` honoured) and
  :func:`audit` writes an entry with it;
- the session cookie (:func:`set_session_cookie`): HttpOnly, SameSite=Strict, path
  ``/admin/``, Secure when ``[web] base_url`` is https.

The CSRF token of a session is an HMAC of the session id under the site's secret: it is the
same on every page of the session, unguessable without the cookie, and needs no storage.
Forms carry it as the ``csrf`` field; scripts and htmx as the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.compose.subscriptions import Form, first
from publisher.models import Operator, role_allows
from publisher.services import sessions
from publisher.services.audit import Actor, record_audit
from publisher.web.common import context, offload, read_form

from . import pages

SESSION_COOKIE = "publisher_admin"
Endpoint = Callable[[Request], Awaitable[Response]]


def session_token(request: Request) -> str | None:
    """The session id from the request's cookie, if any."""
    return request.cookies.get(SESSION_COOKIE) or None


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    """Give the browser its session id."""
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, path=pages.base(request), httponly=True,
        samesite="strict", secure=context(request).config.web.base_url.startswith("https:"),
    )  # fmt: skip


def clear_session_cookie(request: Request, response: Response) -> None:
    """Make the browser forget its session id."""
    response.delete_cookie(
        SESSION_COOKIE, path=pages.base(request), httponly=True, samesite="strict",
        secure=context(request).config.web.base_url.startswith("https:"),
    )  # fmt: skip


def csrf_for(request: Request, token: str) -> str:
    """The CSRF token that goes with session id ``token``."""
    key = hashlib.sha256(("admin-csrf:" + context(request).secret).encode()).digest()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(request: Request, given: str | None) -> bool:
    """Whether ``given`` is this request's session's CSRF token."""
    token = session_token(request)
    if not token or not given:
        return False
    # Bytes: compare_digest refuses a str with non-ASCII characters (a forged token may have).
    return hmac.compare_digest(csrf_for(request, token).encode(), str(given).encode())


def actor(request: Request) -> Actor:
    """Who acts: the logged-in operator's address and the client's IP."""
    operator: Operator | None = getattr(request.state, "operator", None)
    ip = context(request).client_ip(request)
    return Actor(operator.email if operator else "(anonymous)", ip)


async def audit(request: Request, action: str, target: str, detail: str = "") -> None:
    """Write an audit entry for an action the request's operator took."""
    await offload(record_audit, context(request).app, actor(request), action, target, detail)


def form_of(request: Request) -> Form:
    """The POST form that :func:`require` read (and checked) for the endpoint."""
    form: Form = request.state.form
    return form


def require(role: str, *, form: bool = True) -> Callable[[Endpoint], Endpoint]:
    """Make an endpoint need a logged-in operator whose role allows ``role``.

    No session: a GET goes to the login page (and back afterwards), anything else is
    refused. A POST must carry the session's CSRF token: with ``form`` (the default) the
    urlencoded body is read, checked and kept for :func:`form_of`; a streaming endpoint
    (an upload) passes ``form=False`` and the token comes in the ``X-CSRF-Token`` header
    or the ``csrf`` query parameter, checked before the endpoint reads the body.
    """

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            ctx = context(request)
            token = session_token(request)
            found = await offload(sessions.session_operator, ctx.app, token)
            if found is None or found[0].stage != sessions.FULL or token is None:
                if request.method in ("GET", "HEAD"):
                    target = pages.base(request) + "login?next=" + request.url.path
                    return RedirectResponse(target, 303, headers=pages.console_headers())
                return pages.message(request, "Please log in", ["Your session has ended."], 401,
                                     [(pages.base(request) + "login", "Log in")])  # fmt: skip
            request.state.operator = found[1]
            request.state.csrf = csrf_for(request, token)
            if not role_allows(found[1].role, role):
                return pages.message(
                    request, "Not allowed",
                    [f"This needs the {role} role; you are {found[1].role}."], 403,
                )  # fmt: skip
            if request.method not in ("GET", "HEAD"):
                given = request.headers.get("x-csrf-token") or request.query_params.get("csrf")
                if form:
                    request.state.form = await read_form(request)
                    given = given or first(request.state.form, "csrf")
                if not csrf_valid(request, given):
                    return pages.message(
                        request, "Refused", ["This form has expired or did not come from "
                                             "the console. Go back, reload and try again."], 403,
                    )  # fmt: skip
            return await endpoint(request)

        return guarded

    return wrap
