"""CSV imports from the console (HTTP and file I/O): a streamed upload, then a job to watch.

``GET /admin/subscribers/import`` is the form. The browser (``static/pages.js``) sends the
file as the raw body of ``POST /admin/subscribers/import?filename=...`` with the CSRF token
in ``X-CSRF-Token``; the body is read in chunks straight into a temporary file, never held
in memory, and refused with 413 once it passes ``[admin] max_upload_mb`` (at once when its
``Content-Length`` says so). The import then runs in the background
(:class:`publisher.services.import_jobs.ImportJobs`) and ``/admin/subscribers/imports/<id>``
shows its progress bar and its rejected rows (``file:line: reason``), polling
``/admin/subscribers/imports/<id>.json``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.services.import_jobs import ImportJob, ImportJobs
from publisher.web.common import context
from publisher.web.guard import streams_body

from . import pages
from .auth import actor, require

_LOCK = threading.Lock()


def jobs(request: Request) -> ImportJobs:
    """This server's import jobs (made on first use)."""
    state = request.app.state
    with _LOCK:
        if not hasattr(state, "admin_imports"):
            state.admin_imports = ImportJobs()
        registry: ImportJobs = state.admin_imports
    return registry


def _filename(raw: str) -> str:
    """The uploaded file's own name, reduced to something safe to show and log."""
    name = re.sub(r"[^\w.\- ]+", "_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:100] or "upload.csv"


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=pages.console_headers())


@require("editor")
async def import_form(request: Request) -> Response:
    """GET /admin/subscribers/import: the upload form."""
    return pages.render(
        request, "subscribers_import.html.j2", "Import subscribers",
        max_mb=context(request).config.admin.max_upload_mb, data=None,
    )  # fmt: skip


async def _receive(request: Request, limit: int) -> Path | JSONResponse:
    """The body, streamed into a temporary file; a refusal past ``limit`` bytes."""
    too_big = f"the file is larger than [admin] max_upload_mb ({limit // (1024 * 1024)} MB)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _refuse(413, too_big)
    handle, name = tempfile.mkstemp(prefix="publisher-import-", suffix=".csv")
    path, size = Path(name), 0
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    path.unlink(missing_ok=True)
                    return _refuse(413, too_big)
                out.write(chunk)
    except ClientDisconnect:
        path.unlink(missing_ok=True)
        return _refuse(400, "the upload was interrupted")
    if size == 0:
        path.unlink(missing_ok=True)
        return _refuse(400, "the file is empty")
    return path


@require("editor", form=False)
@streams_body
async def upload(request: Request) -> Response:
    """POST /admin/subscribers/import: receive the file, start the import (202)."""
    ctx = context(request)
    received = await _receive(request, ctx.config.admin.max_upload_mb * 1024 * 1024)
    if isinstance(received, Response):
        return received
    filename = _filename(request.query_params.get("filename", ""))
    pending = request.query_params.get("pending") in ("1", "on", "true")
    job = jobs(request).start(ctx.app, received, filename, actor(request), pending=pending)
    page = f"{pages.base(request)}subscribers/imports/{job.id}"
    return JSONResponse(
        {**job.as_dict(), "page": page, "progress": page + ".json"}, 202,
        headers={**pages.console_headers(), "Location": page},
    )  # fmt: skip


def _job(request: Request) -> ImportJob | None:
    return jobs(request).get(request.path_params["job_id"])


@require("editor")
async def job_page(request: Request) -> Response:
    """GET /admin/subscribers/imports/<id>: the import's progress and rejected rows."""
    job = _job(request)
    if job is None:
        return pages.message(request, "No such import", ["This server does not know that "
                                                          "import (it may have restarted)."], 404)  # fmt: skip
    progress = f"{pages.base(request)}subscribers/imports/{job.id}.json"
    return pages.render(request, "subscribers_import_job.html.j2", f"Import of {job.filename}",
                        job=job, data={**job.as_dict(), "progress": progress})  # fmt: skip


@require("editor")
async def job_json(request: Request) -> Response:
    """GET /admin/subscribers/imports/<id>.json: how far the import is."""
    job = _job(request)
    if job is None:
        return _refuse(404, "no such import")
    return JSONResponse(job.as_dict(), headers=pages.console_headers())


def routes() -> list[BaseRoute]:
    """The import form, the upload and the job's pages."""
    return [
        Route("/admin/subscribers/import", import_form, methods=["GET"]),
        Route("/admin/subscribers/import", upload, methods=["POST"]),
        Route("/admin/subscribers/imports/{job_id}.json", job_json, methods=["GET"]),
        Route("/admin/subscribers/imports/{job_id}", job_page, methods=["GET"]),
    ]
