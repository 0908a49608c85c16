"""``/admin/static/``: the console's script, stylesheet and vendored libraries (file I/O).

They ship inside the package (package data), so an installed wheel serves them with no
network and no build step. ``/admin`` without the slash goes to the dashboard.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"


async def bare(request: Request) -> Response:
    """GET /admin: to /admin/."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/admin/", 308)


def routes() -> list[BaseRoute]:
    """The static files and the bare ``/admin``."""
    return [
        Route("/admin", bare, methods=["GET"]),
        Mount("/admin/static", app=StaticFiles(directory=STATIC), name="admin-static"),
    ]
