"""The dashboard (HTTP I/O through services): pictures of the list and of sending.

``/admin/`` is the page; its charts are drawn in the browser by ``static/admin.js`` with
uPlot from ``/admin/charts.json`` (subscribers over time by status, issues per week with
sent, failed and bounced) and ``/admin/live.json`` (queue depth and send rate, polled while
the page is open). ``/admin/live`` is the live panel as HTML, which htmx swaps in every few
seconds: the queue, the send rate, the workers, and a plain banner when none is alive
(``serve`` never sends; "send now" only queues).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.services import guard, monitoring, overview
from publisher.web.common import context, offload

from . import pages
from .auth import require


def live_data(app: App) -> dict[str, Any]:
    """The sending figures now, as the live panel and chart show them."""
    figures = monitoring.figures(app)
    alive = figures.workers.get("alive", 0) + figures.workers.get("unknown", 0)
    return {
        "at": figures.at.timestamp(),
        "queued": figures.queued,
        "sending": figures.sending,
        "sent_1m": figures.sent.get("1m", 0),
        "sent_5m": figures.sent.get("5m", 0),
        "workers_alive": alive,
        "open_issues": figures.open_issues,
        "paused_issues": figures.paused_issues,
        "retry_queue": figures.retry_queue,
        "relays": figures.relays,
        "no_worker": alive == 0,
    }


def _page_data(app: App) -> dict[str, Any]:
    now = app.clock()
    return {
        "live": live_data(app),
        "digests": overview.digests(app, now),
        "sources": overview.sources(app),
        "autopaused": guard.autopaused(app),
    }


@require("viewer")
async def dashboard(request: Request) -> Response:
    """GET /admin/: the charts, the live panel, digests and sources."""
    data = await offload(_page_data, context(request).app)
    return pages.render(request, "dashboard.html.j2", "Dashboard", **data)


@require("viewer")
async def live(request: Request) -> Response:
    """GET /admin/live: the live panel (an HTML fragment for htmx)."""
    data = await offload(live_data, context(request).app)
    return pages.render(request, "live.html.j2", "Live", live=data)


@require("viewer")
async def live_json(request: Request) -> Response:
    """GET /admin/live.json: the live figures for the rolling chart."""
    data = await offload(live_data, context(request).app)
    return JSONResponse(data, headers=pages.console_headers())


@require("viewer")
async def charts_json(request: Request) -> Response:
    """GET /admin/charts.json: the series of the two history charts."""
    app = context(request).app
    data = await offload(overview.chart_series, app)
    return JSONResponse(data, headers=pages.console_headers())


def routes() -> list[BaseRoute]:
    """The dashboard and its data."""
    return [
        Route("/admin/", dashboard, methods=["GET"]),
        Route("/admin/live", live, methods=["GET"]),
        Route("/admin/live.json", live_json, methods=["GET"]),
        Route("/admin/charts.json", charts_json, methods=["GET"]),
    ]
