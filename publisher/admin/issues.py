"""The issues pages (HTTP I/O through services): the list, one issue, its live progress.

``/admin/issues`` lists the newest issues with their progress and, for admins, a "send now"
per digest. ``/admin/issues/<id>`` shows one: a progress bar that ``static/admin.js``
keeps current from ``/admin/issues/<id>/progress.json`` while the issue is open, the email
in two sandboxed iframes (light and dark, from ``/admin/issues/<id>/preview``, which has
its own strict CSP), the plain-text part, the failures grouped by SMTP reply, the
engagement (clicks human and automated, top articles, opens labelled unreliable, and a
uPlot chart of clicks per hour from ``/admin/issues/<id>/engagement.json``), and the
actions the operator's role allows (each asks for confirmation: see :mod:`.actions`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.errors import PublisherError
from publisher.services import engagement_report, guard, overview, previews
from publisher.web.common import context, offload

from . import pages
from .actions import available
from .auth import require

PAGE = 50  # issues per page of the list


def _issue_id(request: Request) -> int:
    return int(request.path_params["issue_id"])


@require("viewer")
async def issue_list(request: Request) -> Response:
    """GET /admin/issues: the newest issues and (admins) a send-now per digest."""
    app = context(request).app
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() else None
    rows = await offload(overview.recent_issues, app, PAGE + 1, before)
    return pages.render(
        request, "issues.html.j2", "Issues", rows=rows[:PAGE],
        older=rows[PAGE - 1].issue.id if len(rows) > PAGE else None,
        digests=[(d.id, d.title) for d in context(request).config.digests],
    )  # fmt: skip


def _detail(app: App, issue_id: int) -> dict[str, Any]:
    progress = overview.progress(app, issue_id)
    preview = previews.issue_preview(app, issue_id)
    person = previews.preview_personal(app, preview, None)
    _html, text = previews.personalized_parts(preview, person)
    return {
        "progress": progress,
        "text": text,
        "failures": overview.failures(app, issue_id),
        "engagement": engagement_report.issue_engagement(app, issue_id),
        "opens_note": engagement_report.OPENS_NOTE,
        "digest_title": app.config.digest(progress.issue.digest_id).title,
        "no_worker": progress.issue.status == "sending" and not overview.workers_running(app),
        "autopause": guard.pause_reason(app, issue_id) if progress.issue.status == "paused" else None,
    }


@require("viewer")
async def issue_detail(request: Request) -> Response:
    """GET /admin/issues/<id>: progress, the email, the text part, failures, actions."""
    try:
        data = await offload(_detail, context(request).app, _issue_id(request))
    except PublisherError as exc:
        return pages.message(request, "No such issue", [exc.message], 404)
    issue = data["progress"].issue
    actions = available(request.state.operator, issue.status)
    return pages.render(request, "issue.html.j2", f"Issue #{issue.id}", actions=actions, **data)


@require("viewer")
async def progress_json(request: Request) -> Response:
    """GET /admin/issues/<id>/progress.json: the counts and percent done now."""
    try:
        progress = await offload(overview.progress, context(request).app, _issue_id(request))
    except PublisherError as exc:
        return JSONResponse({"error": exc.message}, 404, headers=pages.console_headers())
    return JSONResponse(progress.as_dict(), headers=pages.console_headers())


@require("viewer")
async def engagement_json(request: Request) -> Response:
    """GET /admin/issues/<id>/engagement.json: the clicks-per-hour chart's series."""
    app = context(request).app
    try:
        report = await offload(engagement_report.issue_engagement, app, _issue_id(request))
    except PublisherError as exc:
        return JSONResponse({"error": exc.message}, 404, headers=pages.console_headers())
    return JSONResponse({"clicks": engagement_report.click_chart(report)}, headers=pages.console_headers())


def _preview_html(app: App, issue_id: int, scheme: str) -> str:
    preview = previews.issue_preview(app, issue_id)
    html, _text = previews.personalized_parts(
        preview, previews.preview_personal(app, preview, None)
    )
    return previews.in_scheme(html, scheme)


@require("viewer")
async def preview(request: Request) -> Response:
    """GET /admin/issues/<id>/preview?scheme=light|dark: the email for the sandboxed
    iframe, under a CSP of its own (no script, no form; a sandbox even opened alone)."""
    scheme = "dark" if request.query_params.get("scheme") == "dark" else "light"
    try:
        html = await offload(_preview_html, context(request).app, _issue_id(request), scheme)
    except PublisherError as exc:
        return pages.message(request, "No such issue", [exc.message], 404)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": pages.PREVIEW_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[BaseRoute]:
    """The issues pages and their data."""
    return [
        Route("/admin/issues", issue_list, methods=["GET"]),
        Route("/admin/issues/{issue_id:int}", issue_detail, methods=["GET"]),
        Route("/admin/issues/{issue_id:int}/progress.json", progress_json, methods=["GET"]),
        Route("/admin/issues/{issue_id:int}/preview", preview, methods=["GET"]),
        Route("/admin/issues/{issue_id:int}/engagement.json", engagement_json, methods=["GET"]),
    ]
