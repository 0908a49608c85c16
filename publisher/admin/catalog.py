"""The digests and sources page (HTTP I/O through services): ``/admin/digests``.

Each digest: its schedule (cron and time zone), its next fire time, its send window, its
filter, how many active subscribers it has, and its last issues with their delivery
counts. Each source: where it reads, its health as of its last run (last success, failing
runs, the last error), the same figures ``publisher status`` prints. The numbers come from
:mod:`publisher.services.overview`, as on the dashboard, so they agree.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.app import App
from publisher.services import overview
from publisher.web.common import context, offload

from . import pages
from .auth import require

LAST_ISSUES = 5  # per digest
RECENT = 200  # issues read to find them


def _page_data(app: App) -> dict[str, Any]:
    now = app.clock()
    recent: dict[str, list[overview.Progress]] = {}
    for progress in overview.recent_issues(app, RECENT):
        recent.setdefault(progress.issue.digest_id, []).append(progress)
    configs = {d.id: d for d in app.config.digests}
    digests = [
        {
            "row": row, "config": configs[row.id],
            "subscribers": app.store.count_recipients(row.id),
            "issues": recent.get(row.id, [])[:LAST_ISSUES],
        }
        for row in overview.digests(app, now)
    ]  # fmt: skip
    where = {s.name: str(s.url or s.path or "") for s in app.config.sources}
    sources = [{"row": row, "where": where.get(row.name, "")} for row in overview.sources(app)]
    return {"digests": digests, "sources": sources, "now": now}


@require("viewer")
async def catalog(request: Request) -> Response:
    """GET /admin/digests: every digest's schedule and results, every source's health."""
    data = await offload(_page_data, context(request).app)
    return pages.render(request, "digests.html.j2", "Digests and sources", **data)


def routes() -> list[BaseRoute]:
    """The digests and sources page."""
    return [Route("/admin/digests", catalog, methods=["GET"])]
