"""The audit log page (HTTP I/O through services): ``/admin/audit`` and its CSV export.

Every operator action of every door (console, API, CLI): who, what, the target, the detail,
when and from which IP. Filtered by who (exact), what (an action, or ``subscriber.`` for
all of a noun's) and a text in the target; paged by keyset (newest first), so every page
costs the same; ``/admin/audit.csv`` streams the current filter. Viewers may read it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from publisher.services import auditlog
from publisher.services.auditlog import AuditFilter
from publisher.web.common import context, offload

from . import pages
from .auth import audit, require
from .subscribers import csv_download

PAGE_SIZE = 100


def _filter(request: Request) -> AuditFilter:
    params = request.query_params
    return AuditFilter(*(params.get(k, "").strip()[:300] for k in ("actor", "action", "target")))


def _link(wanted: AuditFilter, **extra: str) -> str:
    fields = {"actor": wanted.actor, "action": wanted.action, "target": wanted.target, **extra}
    return urlencode({k: v for k, v in fields.items() if v})


@require("viewer")
async def audit_page(request: Request) -> Response:
    """GET /admin/audit: the filter form and one page of entries."""
    wanted = _filter(request)
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) < 19 else None
    page = await offload(lambda: auditlog.search_audit(context(request).app, wanted, before=before, limit=PAGE_SIZE))
    return pages.render(
        request, "audit.html.j2", "Audit log", wanted=wanted, page=page, paged=before is not None,
        next_link=None if page.next_before is None else "?" + _link(wanted, before=str(page.next_before)),
        first_link="?" + _link(wanted), export_link="audit.csv?" + _link(wanted),
    )  # fmt: skip


@require("viewer")
async def audit_csv(request: Request) -> Response:
    """GET /admin/audit.csv: the filtered log as CSV, streamed."""
    wanted = _filter(request)
    app = context(request).app
    described = ", ".join(f"{k}={v!r}" for k, v in vars(wanted).items() if v) or "everything"
    await audit(request, "audit.export", "audit log", described)
    return csv_download(auditlog.export_lines(app, wanted), "audit", app.clock())


def routes() -> list[BaseRoute]:
    """The audit page and its export."""
    return [
        Route("/admin/audit", audit_page, methods=["GET"]),
        Route("/admin/audit.csv", audit_csv, methods=["GET"]),
    ]
