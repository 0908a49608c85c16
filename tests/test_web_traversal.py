"""Nothing outside the served folders leaks: raw request paths against the real server.

httpx (like browsers) removes ``/../`` from a URL before sending it, so a test written with
it never sends a traversal at all. These requests go out with :mod:`http.client`, which
sends the path byte for byte, to a real ``publisher serve`` (uvicorn), and the secrets they
aim at have file names the server would serve (``.xml``, ``.html``), so only the path checks
in :func:`publisher.web.static.static_routes` stand between them and the client: the refusal of
dot segments for ``..``, and the ``is_relative_to`` check on the resolved path for symlinks
(and for ``..`` too, should the first check ever go).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.test_web_server import NOW, Served, start_server

SECRET = b"<secret>not for the web</secret>"


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no normalisation, no re-encoding)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _raw_socket_get(url: str, path: str) -> tuple[int, bytes]:
    """The same, written on a bare socket: what a hostile client can send."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real server whose feeds and archive folders sit next to files with secrets."""
    folder = tmp_path_factory.mktemp("traversal")
    outside = folder / "private"
    outside.mkdir()
    for name in ("secret.xml", "secret.html", "secret.rss.xml"):
        (outside / name).write_bytes(SECRET)
    (folder / "secret.xml").write_bytes(SECRET)  # one level up from feeds/
    feeds, archive = folder / "feeds", folder / "archive"
    (feeds / "tags").mkdir(parents=True)
    (archive / "daily").mkdir(parents=True)
    (feeds / "rss.xml").write_bytes(b"<rss version='2.0'><channel/></rss>")
    (archive / "daily" / "2026-11-28.html").write_bytes(b"<p>issue</p>")
    # Symlinks inside the served folders that point out of them: a file and a folder.
    (feeds / "escape.xml").symlink_to(outside / "secret.xml")
    (feeds / "elsewhere").symlink_to(outside, target_is_directory=True)
    (archive / "escape.html").symlink_to(outside / "secret.html")
    (archive / "daily" / "up").symlink_to(folder, target_is_directory=True)
    yield from start_server(folder, NOW)


def test_the_raw_client_reaches_files_that_are_served(site: Served) -> None:
    # The control: the same client, server and folders do serve what is inside.
    assert _raw_get(site.url, "/feeds/rss.xml")[0] == 200
    assert _raw_get(site.url, "/feeds/tags/../rss.xml")[0] == 404  # dot segments: refused
    assert _raw_get(site.url, "/archive/daily/2026-11-28.html") == (200, b"<p>issue</p>")


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/../secret.xml",
        "/feeds/../private/secret.xml",
        "/feeds/tags/../../secret.xml",
        "/feeds/%2e%2e/secret.xml",
        "/feeds/%2E%2E/private/secret.rss.xml",
        "/feeds/..%2fsecret.xml",
        "/feeds/tags/..%2f..%2fprivate%2fsecret.xml",
        "/feeds/.%2e/secret.xml",
        "/archive/../private/secret.html",
        "/archive/daily/..%2f..%2fprivate/secret.html",
        "/archive/%2e%2e/private/secret.html",
        # Symlinks in the served folders that lead out of them.
        "/feeds/escape.xml",
        "/feeds/elsewhere/secret.xml",
        "/feeds/elsewhere/secret.rss.xml",
        "/archive/escape.html",
        "/archive/daily/up/private/secret.html",
        "/archive/daily/up/secret.xml",
    ],
)
def test_paths_out_of_the_served_folders_are_refused(site: Served, path: str) -> None:
    status, body = _raw_get(site.url, path)
    assert status == 404, (status, body)
    assert SECRET not in body


def test_a_bare_socket_gets_nothing_either(site: Served) -> None:
    for path in ("/feeds/../secret.xml", "/feeds/escape.xml", "/feeds/..%2fsecret.xml"):
        status, body = _raw_socket_get(site.url, path)
        assert status == 404 and SECRET not in body, (path, status, body)
    assert _raw_socket_get(site.url, "/feeds/rss.xml")[0] == 200
