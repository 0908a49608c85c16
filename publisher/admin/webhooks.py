"""The webhooks page (HTTP I/O through services): ``/admin/webhooks``.

Each ``[[webhooks]]`` entry with its state (on, or off since repeated failures), failed
attempts in a row, events waiting, the last success and the last error; then the POSTs
made, newest first (when, hook, event, attempt, the answer or the error, how long),
filtered by hook and paged by keyset. The same figures ``publisher webhooks list`` and
``history`` print (:mod:`publisher.services.webhooks`). An admin turns a hook that was
turned off back on from here, after a confirmation (audited by the service).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import role_allows
from publisher.services import webhooks
from publisher.web.common import context, offload

from . import pages
from .actions import Action
from .auth import actor, require

PAGE_SIZE = 50


def _page_data(app: App, hook: str | None, before: int | None) -> dict[str, Any]:
    attempts = webhooks.history(app, PAGE_SIZE + 1, hook=hook, before_id=before)
    shown = attempts[:PAGE_SIZE]
    more = len(attempts) > PAGE_SIZE
    return {"hooks": webhooks.hooks(app), "attempts": shown, "next_before": shown[-1].id if more else None}


@require("viewer")
async def webhook_page(request: Request) -> Response:
    """GET /admin/webhooks: the hooks and their recent attempts."""
    hook = request.query_params.get("hook", "").strip()[:100] or None
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) < 19 else None
    data = await offload(_page_data, context(request).app, hook, before)
    nxt = data.pop("next_before")
    query = {"hook": hook} if hook else {}
    return pages.render(
        request, "webhooks.html.j2", "Webhooks", hook=hook or "", paged=before is not None,
        next_link=None if nxt is None else "?" + urlencode({**query, "before": nxt}),
        first_link="?" + urlencode(query),
        can_enable=role_allows(request.state.operator.role, "admin"), **data,
    )  # fmt: skip


ENABLE = Action(
    "Turn back on", "admin", (),
    "The hook is on again: its failures count from zero and the events it missed while off "
    "are due at once, sent by the next worker or daemon pass.", lambda *_: "",
)  # fmt: skip


@require("admin")
async def enable(request: Request) -> Response:
    """GET /admin/webhooks/<name>/enable: confirm; POST: turn the hook back on."""
    name = request.path_params["name"]
    if request.method == "GET":
        return pages.render(
            request, "confirm.html.j2", f"Turn webhook {name} back on", action=ENABLE, name="enable",
            post=f"{pages.base(request)}webhooks/{name}/enable", back=f"{pages.base(request)}webhooks",
            needs_address=False, address="",
        )  # fmt: skip
    who = actor(request)
    try:
        await offload(lambda: webhooks.enable(context(request).app, name, actor=who))
    except PublisherError as exc:
        return pages.message(request, "Not turned on", [exc.message], 409)
    return pages.redirect(request, "webhooks", notice=f"Webhook {name} is on again.")


def routes() -> list[BaseRoute]:
    """The webhooks page and turning a hook back on."""
    return [
        Route("/admin/webhooks", webhook_page, methods=["GET"]),
        Route("/admin/webhooks/{name}/enable", enable, methods=["GET", "POST"]),
    ]
