"""Static files (disk I/O): the feeds under ``/feeds/``, the archive under ``/archive/``.

For feed readers it serves the generated feeds folder and the "view in browser" archive:
the right ``Content-Type`` per format, a weak ``ETag`` (a hash of the bytes) and
``Last-Modified`` (the file's mtime, which the writers keep for unchanged files),
``304 Not Modified`` on ``If-None-Match`` / ``If-Modified-Since`` (gzip is the app's
middleware). Also the pages' stylesheet and the home page's redirect to the sign-up form.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from publisher.config import Config
from publisher.web.common import context

FEEDS_PREFIX = "/feeds"
CACHE_CONTROL = "public, max-age=300"
# File name endings and their media types, most specific first.
MEDIA_TYPES: tuple[tuple[str, str], ...] = (
    ("rss.xml", "application/rss+xml; charset=utf-8"),
    ("atom.xml", "application/atom+xml; charset=utf-8"),
    (".json", "application/feed+json; charset=utf-8"),
    (".opml", "text/x-opml; charset=utf-8"),
    (".html", "text/html; charset=utf-8"),
    (".xml", "application/xml; charset=utf-8"),
    (".txt", "text/plain; charset=utf-8"),
)
# Files we serve were written by us, but archive pages hold email HTML (inline styles,
# remote images): allow those, never script.
STATIC_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def media_type(name: str) -> str | None:
    """The Content-Type to serve the file ``name`` with (None: not a file we serve)."""
    for ending, value in MEDIA_TYPES:
        if name.endswith(ending):
            return value
    return None


class Validators:
    """ETags of served files, cached by (path, inode, mtime, size); thread-safe."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.cache: dict[tuple[str, int, int, int], str] = {}
        self.lock = threading.Lock()

    def etag(self, key: tuple[str, int, int, int], data: bytes) -> str:
        """The weak ETag of ``data``, the file named by ``key``."""
        with self.lock:
            tag = self.cache.get(key)
            if tag is None:
                if len(self.cache) >= self.limit:
                    self.cache.clear()
                tag = f'W/"{hashlib.sha256(data).hexdigest()[:32]}"'
                self.cache[key] = tag
            return tag


def not_modified(request: Request, etag: str, mtime: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        wanted = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in wanted or etag.removeprefix("W/") in wanted
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return mtime.replace(microsecond=0) <= since
    return False


def _not_found() -> Response:
    return Response("not found\n", 404, media_type="text/plain")


class StaticFolder:
    """The files of one folder under ``prefix/``: no hidden files, nothing outside it."""

    def __init__(self, prefix: str, folder: Path) -> None:
        self.prefix = prefix
        self.root = folder.resolve()
        self.validators = Validators()

    def find(self, rel: str) -> Path | None:
        """The file ``rel`` names (a folder means its ``index.html``), if we serve it."""
        parts = [p for p in rel.split("/") if p]
        if any(p.startswith(".") for p in parts):
            return None
        path = self.root.joinpath(*parts)
        if path.is_dir():
            path = path / "index.html"
        try:
            path = path.resolve(strict=True)
        except (FileNotFoundError, RuntimeError, OSError):
            return None
        if media_type(path.name) is None or not path.is_relative_to(self.root):
            return None
        return path if path.is_file() else None

    def serve(self, request: Request) -> Response:
        """The file at ``path``, or 304 when the client's copy is current."""
        path = self.find(request.path_params.get("path", ""))
        if path is None:
            return _not_found()
        stat = path.stat()
        data = path.read_bytes()
        key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        etag = self.validators.etag(key, data)
        mtime = datetime.fromtimestamp(stat.st_mtime, UTC)
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
            "Cache-Control": CACHE_CONTROL,
            "Content-Security-Policy": STATIC_CSP,
        }
        if not_modified(request, etag, mtime):
            return Response(status_code=304, headers=headers)
        return Response(data, headers=headers, media_type=media_type(path.name))

    def to_folder(self, request: Request) -> Response:
        """``prefix`` without its slash: a permanent redirect to ``prefix/``."""
        return RedirectResponse(f"{self.prefix}/", status_code=308)

    def routes(self) -> list[BaseRoute]:
        """The two routes: ``prefix`` and ``prefix/<path>``."""
        return [
            Route(self.prefix, self.to_folder, methods=["GET", "HEAD"]),
            Route(self.prefix + "/{path:path}", self.serve, methods=["GET", "HEAD"]),
        ]


def static_routes(prefix: str, folder: Path) -> list[BaseRoute]:
    """Routes serving the files of ``folder`` under ``prefix/``, with HTTP validators."""
    return StaticFolder(prefix, folder).routes()


def feed_routes(config: Config) -> list[BaseRoute]:
    """Routes serving ``[feeds] output_dir`` under ``/feeds/``."""
    return static_routes(FEEDS_PREFIX, config.feeds.output_dir)


def archive_routes(config: Config) -> list[BaseRoute]:
    """Routes serving the "view in browser" pages (``[web] archive_dir``) under ``/archive/``."""
    return static_routes("/archive", config.web.archive_dir)


# -- the pages' own files -----------------------------------------------------------------


def stylesheet(request: Request) -> Response:
    """``/static/web.css`` from the templates (``[site] templates_dir`` may override it)."""
    env = context(request).templates.env
    css = env.loader.get_source(env, "web/web.css")[0]  # type: ignore[union-attr]
    return Response(
        css,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def home(request: Request) -> Response:
    """``/``: the sign-up form."""
    return RedirectResponse("subscribe", status_code=307)


def page_routes() -> list[BaseRoute]:
    """``/`` and ``/static/web.css``."""
    return [
        Route("/", home, methods=["GET", "HEAD"]),
        Route("/static/web.css", stylesheet, methods=["GET", "HEAD"]),
    ]
