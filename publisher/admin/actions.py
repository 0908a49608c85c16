"""What an operator does to an issue from the console (HTTP I/O through services).

Every action is two requests: GET ``/admin/issues/<id>/<action>`` is a confirmation page
saying what will happen, and its form POSTs to the same address (CSRF-checked by
:func:`~publisher.admin.auth.require`). Actions and the least role for each are in
:data:`ACTIONS`; the services do the work (:mod:`publisher.services.issues`,
:mod:`publisher.services.previews`) and the audit log records it. ``/admin/send/<digest>``
is "send now" for a digest: it creates the due issue and only queues it; a worker sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.compose.subscriptions import first
from publisher.errors import ConfigError, PublisherError
from publisher.models import Operator, role_allows
from publisher.services import issues, previews
from publisher.web.common import context, offload

from . import pages
from .auth import audit, form_of, require

OPEN = ("sending", "paused")


def _test(app: App, issue_id: int, to: str) -> str:
    previews.send_test_copy(app, previews.issue_preview(app, issue_id), to)
    return f"A test copy went to {to}."


def _pause(app: App, issue_id: int, _to: str) -> str:
    done = issues.pause_issue(app, issue_id)
    return f"Paused: {done.queued} queued deliveries wait; {done.sending} in flight finish."


def _resume(app: App, issue_id: int, _to: str) -> str:
    done = issues.resume_issue(app, issue_id)
    return f"Resumed: {done.queued} queued deliveries go out with the next worker poll."


def _cancel(app: App, issue_id: int, _to: str) -> str:
    done = issues.cancel_issue(app, issue_id)
    return f"Cancelled: {done.skipped} deliveries skipped; messages in flight finish."


def _resend(app: App, issue_id: int, _to: str) -> str:
    _issue, requeued = issues.requeue_failed(app, issue_id)
    return f"{requeued} failed deliveries queued again; a worker sends them."


@dataclass(frozen=True)
class Action:
    """One issue action: its button, the least role, the issue states it applies to, what
    the confirmation page says, and the service call (returning a one-line result)."""

    label: str
    role: str
    states: tuple[str, ...]
    explain: str
    run: Callable[[App, int, str], str]
    danger: bool = False


ACTIONS: dict[str, Action] = {
    "test": Action("Send a test copy", "editor", ("sending", "paused", "sent", "cancelled"),
                   "One [TEST] copy of this issue goes to the address below. Nothing is "
                   "recorded against any subscriber.", _test),
    "pause": Action("Pause", "admin", ("sending",),
                    "Workers stop claiming this issue within about a second; its queued "
                    "deliveries wait until you resume.", _pause),
    "resume": Action("Resume", "admin", ("paused",),
                     "The queued deliveries become sendable again; a running worker picks "
                     "them up at its next poll.", _resume),
    "cancel": Action("Cancel", "admin", OPEN,
                     "Every queued delivery is skipped and nothing resumes this issue. "
                     "Messages already in flight finish. This cannot be undone.", _cancel,
                     danger=True),
    "resend": Action("Resend failed", "admin", ("sending", "paused", "sent"),
                     "Failed deliveries are queued again with a fresh retry budget. Bounced "
                     "addresses are not retried; nobody gets a message twice.", _resend),
}  # fmt: skip


def available(operator: Operator, status: str) -> list[tuple[str, Action]]:
    """The actions this operator may take on an issue in ``status``."""
    return [
        (name, a) for name, a in ACTIONS.items()
        if status in a.states and role_allows(operator.role, a.role)
    ]  # fmt: skip


def _lookup(request: Request) -> tuple[str, Action] | Response:
    name = request.path_params["action"]
    action = ACTIONS.get(name)
    if action is None:
        return pages.message(request, "Page not found", ["There is no such action."], 404)
    if not role_allows(request.state.operator.role, action.role):
        return pages.message(
            request, "Not allowed",
            [f"{action.label} needs the {action.role} role; you are "
             f"{request.state.operator.role}."], 403,
        )  # fmt: skip
    return name, action


@require("viewer")
async def confirm(request: Request) -> Response:
    """GET /admin/issues/<id>/<action>: what will happen, and the button that does it."""
    found = _lookup(request)
    if isinstance(found, Response):
        return found
    name, action = found
    issue_id = int(request.path_params["issue_id"])
    return pages.render(
        request, "confirm.html.j2", f"{action.label}: issue #{issue_id}", action=action,
        name=name, post=f"{pages.base(request)}issues/{issue_id}/{name}",
        back=f"{pages.base(request)}issues/{issue_id}", needs_address=name == "test",
        address=request.state.operator.email,
    )  # fmt: skip


@require("viewer")
async def perform(request: Request) -> Response:
    """POST /admin/issues/<id>/<action>: do it, audit it, back to the issue."""
    found = _lookup(request)
    if isinstance(found, Response):
        return found
    name, action = found
    issue_id = int(request.path_params["issue_id"])
    to = ""
    if name == "test":
        try:
            to = validate_email(
                first(form_of(request), "to").strip(), check_deliverability=False
            ).normalized
        except EmailNotValidError as exc:
            return pages.message(request, "Not sent", [f"That address does not work: {exc}."], 400)
    try:
        result = await offload(action.run, context(request).app, issue_id, to)
    except PublisherError as exc:
        return pages.message(request, f"{action.label}: not done", [exc.message], 409,
                             [(f"{pages.base(request)}issues/{issue_id}", "Back to the issue")])  # fmt: skip
    await audit(request, f"issue.{name}", f"issue #{issue_id}", to)
    return pages.redirect(request, f"issues/{issue_id}", notice=result)


def _send_now(app: App, digest_id: str) -> list[Any]:
    app.config.digest(digest_id)  # an unknown digest: one clear line
    return issues.send_now(app, digest_id)


@require("admin")
async def send_now(request: Request) -> Response:
    """GET /admin/send/<digest>: confirm; POST: create the due issue and queue it."""
    ctx = context(request)
    digest_id = request.path_params["digest_id"]
    if request.method == "GET":
        known = {d.id: d.title for d in ctx.config.digests}
        if digest_id not in known:
            return pages.message(request, "Page not found", ["There is no such digest."], 404)
        return pages.render(
            request, "confirm.html.j2", f"Send now: {known[digest_id]}", name="send",
            action=Action("Send now", "admin", (), "The digest's due issue is created now from "
                          "its new articles and every recipient is queued. A worker (`publisher "
                          "worker` or the daemon) sends them; this page never sends itself.",
                          lambda *_: ""),
            post=f"{pages.base(request)}send/{digest_id}", back=f"{pages.base(request)}issues",
            needs_address=False, address="",
        )  # fmt: skip
    try:
        reports = await offload(_send_now, ctx.app, digest_id)
    except (PublisherError, ConfigError) as exc:
        return pages.message(request, "Not sent", [exc.message], 409)
    issue = next((r.issue for r in reports if r.issue is not None), None)
    notes = "; ".join(r.note for r in reports if r.note) or "nothing new to send"
    await audit(
        request, "issue.send_now", digest_id, notes if issue is None else f"issue #{issue.id}"
    )
    if issue is None:
        return pages.redirect(request, "issues", notice=f"Nothing queued: {notes}.")
    return pages.redirect(request, f"issues/{issue.id}", notice="Queued: a worker sends it.")


def routes() -> list[BaseRoute]:
    """The confirmation pages and the actions."""
    return [
        Route("/admin/issues/{issue_id:int}/{action}", confirm, methods=["GET"]),
        Route("/admin/issues/{issue_id:int}/{action}", perform, methods=["POST"]),
        Route("/admin/send/{digest_id}", send_now, methods=["GET", "POST"]),
    ]
