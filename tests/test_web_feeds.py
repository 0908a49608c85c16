"""Serving the feeds folder through a real uvicorn server, read with httpx."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
import uvicorn

from publisher.web import create_app
from publisher.web.static import media_type
from tests.conftest import free_port
from tests.feed_checks import check_atom, check_json_feed, check_rss
from tests.test_feeds_build import Site, make_article


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Site, str]]:
    site = Site(tmp_path, "per_tag = true\narchive = true\narchive_page_size = 2\n")
    site.add(*(make_article(n) for n in range(5)))
    site.build()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(site.config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield site, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        site.store.close()


@pytest.mark.parametrize(
    ("path", "media", "check"),
    [
        ("rss.xml", "application/rss+xml", check_rss),
        ("atom.xml", "application/atom+xml", check_atom),
        ("feed.json", "application/feed+json", check_json_feed),
        ("tags/research.rss.xml", "application/rss+xml", check_rss),
        ("tags/research.feed.json", "application/feed+json", check_json_feed),
        ("archive/1.atom.xml", "application/atom+xml", check_atom),
    ],
)
def test_feeds_are_served_with_their_media_type(
    served: tuple[Site, str], path: str, media: str, check
) -> None:
    site, base = served
    response = httpx.get(f"{base}/feeds/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media}; charset=utf-8"
    assert response.content == site.read(path)
    check(response.content)
    assert response.headers["etag"].startswith('W/"')
    assert response.headers["last-modified"].endswith(" GMT")


def test_conditional_get_returns_304(served: tuple[Site, str]) -> None:
    site, base = served
    url = f"{base}/feeds/atom.xml"
    with httpx.Client() as client:
        first = client.get(url)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        assert client.get(url, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        older = formatdate((site.out / "atom.xml").stat().st_mtime - 3600, usegmt=True)
        assert client.get(url, headers={"If-Modified-Since": older}).status_code == 200
        # If-None-Match wins over If-Modified-Since.
        both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert client.get(url, headers=both).status_code == 200
        assert client.get(url, headers={"If-Modified-Since": "garbage"}).status_code == 200
        # An unchanged rebuild keeps the validators; a change gives new ones.
        site.build()
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        site.add(make_article(9))
        site.build()
        changed = client.get(url, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_gzip_when_accepted(served: tuple[Site, str]) -> None:
    site, base = served
    raw = httpx.get(f"{base}/feeds/rss.xml", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in raw.headers["vary"].lower()
    assert raw.content == site.read("rss.xml")  # httpx decodes it
    with httpx.stream(
        "GET", f"{base}/feeds/rss.xml", headers={"Accept-Encoding": "gzip"}
    ) as response:
        body = b"".join(response.iter_raw())
    assert gzip.decompress(body) == site.read("rss.xml")
    plain = httpx.get(f"{base}/feeds/rss.xml", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


def test_index_has_autodiscovery_links_and_head_works(served: tuple[Site, str]) -> None:
    _, base = served
    page = httpx.get(f"{base}/feeds/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<link rel="alternate" type="application/atom+xml"' in page.text
    assert '<link rel="alternate" type="application/rss+xml"' in page.text
    assert "archive/1.atom.xml" in page.text
    assert httpx.get(f"{base}/feeds", follow_redirects=True).status_code == 200
    head = httpx.head(f"{base}/feeds/rss.xml")
    assert head.status_code == 200 and head.content == b""
    opml = httpx.get(f"{base}/feeds/feeds.opml")
    assert opml.headers["content-type"].startswith("text/x-opml")


def test_hidden_and_unknown_files_are_not_served(served: tuple[Site, str]) -> None:
    # Traversal out of the folder is tested with raw paths in test_web_traversal.py.
    site, base = served
    (site.out / ".hidden.xml").write_text("<x/>")
    (site.out / "notes.toml").write_text("x = 1")
    for path in (".hidden.xml", "nope.xml", "notes.toml"):
        assert httpx.get(f"{base}/feeds/{path}").status_code == 404


def test_media_types_by_file_name() -> None:
    assert media_type("tags/x.rss.xml").startswith("application/rss+xml")
    assert media_type("archive/2.atom.xml").startswith("application/atom+xml")
    assert media_type("authors/a.feed.json").startswith("application/feed+json")
    assert media_type("secret.db") is None


def test_publisher_serve_command(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.add(make_article(1))
    site.build()
    site.store.close()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher", "--config", str(site.path), "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/feeds/rss.xml")
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/rss+xml")
    finally:
        process.terminate()
        process.wait(timeout=10)
