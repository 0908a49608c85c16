"""Operators and API tokens, managed from the console by admins (HTTP I/O through services).

``/admin/operators`` lists the operators and adds one; removing an operator and resetting
their second factor each go through a confirmation page. ``/admin/tokens`` lists the API
tokens (never their secrets) and creates one, shown once; revoking is confirmed too. The
services (:mod:`publisher.services.operators`, :mod:`publisher.services.tokens`) check
everything (address, role, password strength, the last admin, names, scopes) and write
the audit entries with the operator's address and IP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.compose.subscriptions import first
from publisher.errors import PublisherError
from publisher.models import ROLES, SCOPES
from publisher.services import operators as accounts
from publisher.services import tokens
from publisher.services.audit import Actor
from publisher.web.common import context, offload

from . import pages
from .auth import actor, form_of, require


@require("admin")
async def operator_list(request: Request) -> Response:
    """GET /admin/operators: every operator, and the form to add one."""
    rows = await offload(accounts.list_operators, context(request).app)
    return pages.render(request, "operators.html.j2", "Operators", rows=rows, roles=ROLES,
                        error="", email="", role="viewer")  # fmt: skip


@require("admin")
async def operator_add(request: Request) -> Response:
    """POST /admin/operators: add an operator with a role and a first password."""
    form = form_of(request)
    email, role, password = (
        first(form, "email").strip(),
        first(form, "role"),
        first(form, "password"),
    )
    who = actor(request)
    app = context(request).app
    try:
        await offload(lambda: accounts.add_operator(app, email, role, password, actor=who))
    except PublisherError as exc:
        rows = await offload(accounts.list_operators, app)
        return pages.render(request, "operators.html.j2", "Operators", 400, rows=rows,
                            roles=ROLES, error=exc.message, email=email, role=role)  # fmt: skip
    return pages.redirect(request, "operators", notice=f"Added {email} ({role}).")


def _remove(app: App, email: str, who: Actor) -> str:
    accounts.remove_operator(app, email, actor=who)
    return f"Removed {email}."


def _reset_2fa(app: App, email: str, who: Actor) -> str:
    had = accounts.reset_2fa(app, email, actor=who)
    return f"Two-factor login reset for {email}." if had else f"{email} had no second factor."


def _revoke(app: App, name: str, who: Actor) -> str:
    tokens.revoke_token(app, name, actor=who)
    return f"Revoked {name}."


# Each confirmed change: its page text, the form field naming what it applies to, the page
# to go back to, and the service call (returning the one-line result).
CHANGES: dict[str, dict[str, Any]] = {
    "operators/remove": {
        "label": "Remove operator", "field": "email", "danger": True, "back": "operators",
        "explain": "This operator can no longer log in; their sessions end now.",
        "run": _remove,
    },
    "operators/reset-2fa": {
        "label": "Reset two-factor login", "field": "email", "danger": False, "back": "operators",
        "explain": "Their authenticator and recovery codes stop working; they log in with the "
                   "password alone and may enrol again.",
        "run": _reset_2fa,
    },
    "tokens/revoke": {
        "label": "Revoke token", "field": "name", "danger": True, "back": "tokens",
        "explain": "Programs using this token are refused from their next request. The name "
                   "stays taken, for the audit trail.",
        "run": _revoke,
    },
}  # fmt: skip


def _change(path: str) -> Callable[[Request], Any]:
    change = CHANGES[path]

    @require("admin")
    async def confirm_or_do(request: Request) -> Response:
        if request.method == "GET":
            value = request.query_params.get(change["field"], "")
            return pages.render(
                request, "confirm.html.j2", f"{change['label']}: {value}", action=change,
                post=f"{pages.base(request)}{path}", back=pages.base(request) + change["back"],
                needs_address=False, address="", hidden={change["field"]: value},
            )  # fmt: skip
        value = first(form_of(request), change["field"])
        who, app = actor(request), context(request).app
        try:
            done = await offload(lambda: change["run"](app, value, who))
        except PublisherError as exc:
            return pages.message(request, f"{change['label']}: not done", [exc.message], 409,
                                 [(pages.base(request) + change["back"], "Back")])  # fmt: skip
        return pages.redirect(request, change["back"], notice=str(done))

    return confirm_or_do


def _token_rows(app: App) -> list[dict[str, Any]]:
    now = app.clock()
    return [{"token": t, "state": t.state(now)} for t in tokens.list_tokens(app)]


@require("admin")
async def token_list(request: Request) -> Response:
    """GET /admin/tokens: every token (never a secret), and the form to create one."""
    rows = await offload(_token_rows, context(request).app)
    return pages.render(request, "tokens.html.j2", "API tokens", rows=rows, scopes=SCOPES,
                        error="", name="", created=None, secret="")  # fmt: skip


@require("admin")
async def token_create(request: Request) -> Response:
    """POST /admin/tokens: create a token and show its secret, this once."""
    form = form_of(request)
    name, scope, expires = first(form, "name").strip(), first(form, "scope"), first(form, "expires")
    who, app = actor(request), context(request).app

    def create() -> tuple[Any, str]:
        return tokens.create_token(app, name, scope, tokens.parse_expiry(expires.strip() or None),
                                   actor=who)  # fmt: skip

    try:
        created, secret = await offload(create)
    except PublisherError as exc:
        rows = await offload(_token_rows, app)
        return pages.render(request, "tokens.html.j2", "API tokens", 400, rows=rows,
                            scopes=SCOPES, error=exc.message, name=name, created=None,
                            secret="")  # fmt: skip
    rows = await offload(_token_rows, app)
    return pages.render(request, "tokens.html.j2", "API tokens", rows=rows, scopes=SCOPES,
                        error="", name="", created=created, secret=secret)  # fmt: skip


def routes() -> list[BaseRoute]:
    """The operators and tokens pages."""
    return [
        Route("/admin/operators", operator_list, methods=["GET"]),
        Route("/admin/operators", operator_add, methods=["POST"]),
        Route("/admin/tokens", token_list, methods=["GET"]),
        Route("/admin/tokens", token_create, methods=["POST"]),
        *[Route(f"/admin/{path}", _change(path), methods=["GET", "POST"]) for path in CHANGES],
    ]
