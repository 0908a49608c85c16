"""Logging in and out, and the operator's own account page with 2FA enrolment (HTTP I/O).

``/admin/login`` takes the address and password (the limits are checked first, in the
store, so they hold across processes); with 2FA enrolled, ``/admin/login/2fa`` then takes
a TOTP code or a recovery code. ``/admin/logout`` ends the session. ``/admin/account``
shows the operator's role and second factor and enrols one: a new secret as an
``otpauth://`` URI, its QR code and the secret in text, confirmed by a first code; the
ten recovery codes are shown once.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.compose.subscriptions import first
from publisher.errors import OperatorError
from publisher.services import sessions, twofactor
from publisher.web.common import context, csrf_ok, csrf_token, offload, read_form, set_csrf

from . import pages
from .auth import (
    actor,
    clear_session_cookie,
    csrf_for,
    form_of,
    require,
    session_token,
    set_session_cookie,
)


def _next(request: Request, raw: str) -> str:
    """Where to go after logging in: a console path only (never another site)."""
    root = pages.base(request)
    if raw.startswith(root) and "//" not in raw and "\\" not in raw:
        return raw
    return root


def _login_page(request: Request, status: int = 200, error: str = "", email: str = "") -> Response:
    token, new = csrf_token(request)
    response = pages.render(
        request, "login.html.j2", "Log in", status, login_csrf=token, error=error,
        email=email, next=_next(request, request.query_params.get("next", "")),
    )  # fmt: skip
    if new:
        set_csrf(response, request, token)
    return response


async def login_form(request: Request) -> Response:
    """GET /admin/login: the form (or, already logged in, the dashboard)."""
    found = await offload(sessions.session_operator, context(request).app, session_token(request))
    if found is not None and found[0].stage == sessions.FULL:
        return pages.redirect(request, "")
    return _login_page(request)


async def login(request: Request) -> Response:
    """POST /admin/login: check the password; start a session (or the 2FA step)."""
    ctx = context(request)
    form = await read_form(request)
    if not csrf_ok(request, form):
        return pages.message(request, "Refused", ["The form expired: reload the page."], 403)
    email, password = first(form, "email").strip(), first(form, "password")
    ip = ctx.client_ip(request)
    try:
        done = await offload(sessions.password_login, ctx.app, email, password, ip)
    except sessions.LoginRefused as exc:
        response = _login_page(request, 429 if exc.retry_after else 401, exc.message, email)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    hours = ctx.config.admin.session_hours
    if done.needs_second_factor:
        response: Response = pages.redirect(request, "login/2fa")
        set_session_cookie(request, response, done.token, sessions.PENDING_MINUTES * 60)
        return response
    target = _next(request, first(form, "next"))
    response = RedirectResponse(target, 303, headers=pages.console_headers())
    set_session_cookie(request, response, done.token, hours * 3600)
    return response


async def second_factor(request: Request) -> Response:
    """GET and POST /admin/login/2fa: the code from the app, or a recovery code."""
    ctx = context(request)
    token = session_token(request)
    if token is None:
        return pages.redirect(request, "login")
    error, status = "", 200
    if request.method == "POST":
        form = await read_form(request)
        if not hmac.compare_digest(first(form, "csrf").encode(), csrf_for(request, token).encode()):
            return pages.message(request, "Refused", ["The form expired: log in again."], 403)
        ip = ctx.client_ip(request)
        try:
            await offload(sessions.second_factor_login, ctx.app, token, first(form, "code"), ip)
        except sessions.LoginRefused as exc:
            error, status = exc.message, 429 if exc.retry_after else 401
        else:
            response = pages.redirect(request, "")
            set_session_cookie(request, response, token, ctx.config.admin.session_hours * 3600)
            return response
    response = pages.render(
        request, "second_factor.html.j2", "Second factor", status,
        step_csrf=csrf_for(request, token), error=error,
    )  # fmt: skip
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response


@require("viewer")
async def logout(request: Request) -> Response:
    """POST /admin/logout: end the session."""
    token = session_token(request) or ""
    who = actor(request)
    await offload(lambda: sessions.logout(context(request).app, token, actor=who))
    response = pages.redirect(request, "login", notice="You are logged out.")
    clear_session_cookie(request, response)
    return response


@require("viewer")
async def account(request: Request) -> Response:
    """GET /admin/account: role, second factor, and enrolment when there is none."""
    operator = request.state.operator
    values: dict[str, object] = {"codes_left": twofactor.recovery_codes_left(operator), "error": ""}
    if not operator.two_factor:
        secret = twofactor.new_secret()
        uri = twofactor.provisioning_uri(context(request).app, operator.email, secret)
        values.update(secret=secret, uri=uri, qr=twofactor.qr_svg(uri))
    return pages.render(request, "account.html.j2", "Your account", **values)


@require("viewer")
async def enrol(request: Request) -> Response:
    """POST /admin/account/2fa: turn TOTP on with the first code; show the recovery codes."""
    form = form_of(request)
    operator = request.state.operator
    secret = first(form, "secret")
    try:
        codes = await offload(
            lambda: twofactor.enrol(
                context(request).app, operator, secret, first(form, "code"), actor=actor(request)
            )
        )
    except OperatorError as exc:
        uri = twofactor.provisioning_uri(context(request).app, operator.email, secret)
        return pages.render(
            request, "account.html.j2", "Your account", 400, codes_left=0, secret=secret,
            uri=uri, qr=twofactor.qr_svg(uri), error=exc.message,
        )  # fmt: skip
    return pages.render(request, "recovery_codes.html.j2", "Recovery codes", codes=codes)


def routes() -> list[BaseRoute]:
    """The login, second-factor, logout and account routes."""
    return [
        Route("/admin/login", login_form, methods=["GET"]),
        Route("/admin/login", login, methods=["POST"]),
        Route("/admin/login/2fa", second_factor, methods=["GET", "POST"]),
        Route("/admin/logout", logout, methods=["POST"]),
        Route("/admin/account", account, methods=["GET"]),
        Route("/admin/account/2fa", enrol, methods=["POST"]),
    ]
