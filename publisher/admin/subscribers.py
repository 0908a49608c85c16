"""The subscribers pages (HTTP I/O through services): search, one subscriber, the export.

``/admin/subscribers`` searches by address or name and filters by digest, status and topic;
pages are the directory's keyset pages (:func:`publisher.services.directory.search_subscribers`,
the same search as the API's), so "next" costs the same on page one and page twenty
thousand. ``/admin/subscribers/<id>`` shows one subscriber: their subscriptions, delivery
history (issue, state, SMTP reply, times), bounces and any suppression, with the editor's
actions (:mod:`.subscriber_actions`). ``/admin/subscribers.csv`` streams the current
search as CSV in the shape ``publisher subscribers import`` reads back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import role_allows
from publisher.services import directory, records, subscriptions
from publisher.web.common import context, offload

from . import pages
from .auth import audit, require

PAGE_SIZE = 50


@dataclass(frozen=True)
class Search:
    """The search of a request's query string (empty fields are no filter)."""

    query: str = ""
    digest: str = ""
    status: str = ""
    topic: str = ""

    @classmethod
    def of(cls, request: Request) -> Search:
        """The search the query string asks for."""
        params = request.query_params
        return cls(*(params.get(k, "").strip()[:200] for k in ("q", "digest", "status", "topic")))

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for the directory's search."""
        return {
            "query": self.query, "digest": self.digest or None,
            "status": self.status or None, "topic": self.topic or None,
        }  # fmt: skip

    def link(self, **extra: str) -> str:
        """The query string of this search (plus ``extra``), for links."""
        fields = {"q": self.query, "digest": self.digest, "status": self.status, "topic": self.topic}
        return urlencode({k: v for k, v in {**fields, **extra}.items() if v})

    def describe(self) -> str:
        """The filters in words, for the audit log."""
        parts = [f"{k}={v!r}" for k, v in self.arguments().items() if v]
        return ", ".join(parts) or "everyone"


def _choices(app: App) -> dict[str, Any]:
    return {
        "digests": [(d.id, d.title) for d in app.config.digests],
        "statuses": directory.STATUSES,
        "topics": subscriptions.known_tags(app),
    }


def _list_data(app: App, search: Search, after: str | None) -> dict[str, Any]:
    page = directory.search_subscribers(app, after=after, limit=PAGE_SIZE, **search.arguments())
    return {"page": page, "error": "", **_choices(app)}


@require("viewer")
async def subscriber_list(request: Request) -> Response:
    """GET /admin/subscribers: the search form and one page of results."""
    search = Search.of(request)
    after = request.query_params.get("after") or None
    app = context(request).app
    try:
        data = await offload(_list_data, app, search, after)
    except PublisherError as exc:
        data = {"page": None, "error": exc.message, **await offload(_choices, app)}
    page = data["page"]
    return pages.render(
        request, "subscribers.html.j2", "Subscribers", search=search, after=after,
        next_link=None if page is None or page.next_cursor is None
        else "?" + search.link(after=page.next_cursor),
        first_link="?" + search.link(), export_link="subscribers.csv?" + search.link(),
        can_change=role_allows(request.state.operator.role, "editor"),
        status=400 if page is None else 200, **data,
    )  # fmt: skip


def _detail(app: App, subscriber_id: int) -> dict[str, Any]:
    record = records.subscriber_record(app, subscriber_id)
    titles = {d.id: d.title for d in app.config.digests}
    return {"record": record, "titles": titles}


@require("viewer")
async def subscriber_detail(request: Request) -> Response:
    """GET /admin/subscribers/<id>: the subscriber, history, bounces and actions."""
    subscriber_id = int(request.path_params["subscriber_id"])
    try:
        data = await offload(_detail, context(request).app, subscriber_id)
    except PublisherError as exc:
        return pages.message(request, "No such subscriber", [exc.message], 404,
                             [(pages.base(request) + "subscribers", "Back to subscribers")])  # fmt: skip
    sub = data["record"].subscriber
    return pages.render(
        request, "subscriber.html.j2", sub.email if sub.status != "erased" else f"Subscriber #{sub.id}",
        can_change=role_allows(request.state.operator.role, "editor"), **data,
    )  # fmt: skip


@require("viewer")
async def export_csv(request: Request) -> Response:
    """GET /admin/subscribers.csv: the current search as CSV, streamed."""
    search = Search.of(request)
    app = context(request).app
    try:
        lines = await offload(lambda: records.export_lines(app, **search.arguments()))
    except PublisherError as exc:
        return pages.message(request, "Not exported", [exc.message], 400)
    await audit(request, "subscriber.export", "subscribers", search.describe())
    return csv_download(lines, "subscribers", app.clock())


def csv_download(lines: Iterator[str], stem: str, now: datetime) -> StreamingResponse:
    """A CSV file the browser saves as ``<stem>-<time>.csv``, streamed line by line (the
    iterator runs in the thread pool, so its store reads never block the event loop)."""
    return StreamingResponse(
        lines, media_type="text/csv; charset=utf-8",
        headers={**pages.console_headers(),
                 "Content-Disposition": f'attachment; filename="{stem}-{now:%Y%m%d-%H%M%S}.csv"'},
    )  # fmt: skip


def routes() -> list[BaseRoute]:
    """The subscriber list, a subscriber's page and the export."""
    return [
        Route("/admin/subscribers", subscriber_list, methods=["GET"]),
        Route("/admin/subscribers.csv", export_csv, methods=["GET"]),
        Route("/admin/subscribers/{subscriber_id:int}", subscriber_detail, methods=["GET"]),
    ]
