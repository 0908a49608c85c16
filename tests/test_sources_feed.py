"""Remote feed sources against a real local HTTP server: formats, conditional GET, limits,
redirects, SSRF and XML attacks. One bad source never stops the others."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from publisher.app import App, open_app
from publisher.collect.feed import parse_feed, stable_guid
from publisher.collect.fetch import FetchError, FetchLimits, check_address, fetch
from publisher.config import SourceConfig, load
from publisher.services import collecting
from tests.conftest import write_config

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

RSS2 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Partner news</title><link>http://partner.example/</link><description>d</description>
<item><title>Partner item one</title><link>http://partner.example/one</link><guid>partner-1</guid>
<pubDate>Wed, 25 Nov 2026 10:00:00 +0000</pubDate><category>research</category>
<description>Summary one</description>
<content:encoded><![CDATA[<p>Body <a href="/rel">relative</a> <script>alert(1)</script><img src="x.png" onerror="alert(2)"></p>]]></content:encoded></item>
<item><title>Partner item two</title><link>http://partner.example/two</link>
<pubDate>Thu, 26 Nov 2026 10:00:00 +0000</pubDate><category>sports</category><description>Two</description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://atom.example/blog/">
<title>Atom partner</title><id>urn:x</id><updated>2026-11-27T00:00:00Z</updated>
<entry><title>Atom entry</title><id>urn:atom:1</id><link href="posts/1"/>
<updated>2026-11-27T00:00:00Z</updated><published>2026-11-26T00:00:00Z</published>
<content type="html">&lt;p&gt;See &lt;a href="../about"&gt;about&lt;/a&gt;&lt;/p&gt;</content></entry>
</feed>"""

JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "J", "home_page_url": "http://json.example/",
"items": [{"id": "j1", "url": "http://json.example/j1", "title": "JSON item", "content_html": "<p>Hi</p>",
"date_published": "2026-11-20T08:00:00Z", "tags": ["Research"], "authors": [{"name": "Jo"}]}]}"""

RSS1 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://rdf.example/"><title>RDF</title><link>http://rdf.example/</link><description>d</description></channel>
<item rdf:about="http://rdf.example/1"><title>RDF item</title><link>http://rdf.example/1</link>
<dc:date>2026-11-21T00:00:00Z</dc:date><description>RDF body</description></item>
</rdf:RDF>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title></item></channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title><link>http://x/</link></item></channel></rss>"""


class FeedServer:
    """A real HTTP server on 127.0.0.1 serving fixture feeds by path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.conditional_hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                outer.route(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, h: BaseHTTPRequestHandler) -> None:
        static = {
            "/rss2.xml": RSS2, "/atom.xml": ATOM, "/feed.json": JSON_FEED, "/rss1.rdf": RSS1,
            "/laughs.xml": LAUGHS, "/xxe.xml": XXE, "/broken.xml": b"<rss><channel><title>x</broken>",
        }  # fmt: skip
        if h.path in static:
            return self.send(h, 200, static[h.path])
        if h.path == "/etag.xml":
            if h.headers.get("If-None-Match") == '"v1"':
                self.conditional_hits += 1
                return self.send(h, 304, b"")
            return self.send(h, 200, RSS2, {"ETag": '"v1"'})
        if h.path.startswith("/hop/"):
            n = int(h.path.rsplit("/", 1)[1])
            target = "/rss2.xml" if n == 0 else f"/hop/{n - 1}"
            return self.send(h, 301, b"", {"Location": target})
        if h.path == "/metadata":
            return self.send(h, 302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        if h.path == "/big.xml":
            return self.send(h, 200, RSS2 + b"<!--" + b"x" * 200_000 + b"-->")
        if h.path == "/slow.xml":
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            h.end_headers()
            try:
                for _ in range(40):
                    h.wfile.write(b" ")
                    h.wfile.flush()
                    time.sleep(0.25)
            except OSError:
                pass
            return None
        return self.send(h, 404, b"not found")

    @staticmethod
    def send(
        h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


@pytest.fixture(autouse=True)
def short_politeness(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every fixture feed lives on one host; a full second between them only slows the tests.
    monkeypatch.setattr(collecting, "POLITENESS_SECONDS", 0.05)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def _source(name: str, url: str, **kw: object) -> SourceConfig:
    return SourceConfig(name=name, type="feed", url=url, allow_private=True, **kw)  # type: ignore[arg-type]


def _sources_toml(server: FeedServer, entries: list[tuple[str, str, str]]) -> str:
    lines = []
    for name, path, extra in entries:
        lines.append(
            f'[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{server.url(path)}"\n'
            f"allow_private = true\ntimeout = 2\n{extra}\n"
        )
    return "\n".join(lines)


def _app(tmp_path: Path, server: FeedServer, entries: list[tuple[str, str, str]]) -> App:
    config_path = write_config(tmp_path)
    text = config_path.read_text(encoding="utf-8")
    text = text.replace(
        '[[sources]]\nname = "newsroom"',
        _sources_toml(server, entries) + '\n[[sources]]\nname = "newsroom"',
    )
    config_path.write_text(text, encoding="utf-8")
    return open_app(load(config_path), clock=lambda: NOW)


def test_every_format_is_collected_and_sanitized(tmp_path: Path, feed_server: FeedServer) -> None:
    app = _app(
        tmp_path,
        feed_server,
        [
            ("rss", "/rss2.xml", ""),
            ("atom", "/atom.xml", ""),
            ("json", "/feed.json", ""),
            ("rdf", "/rss1.rdf", ""),
        ],
    )
    report = collecting.collect(app)
    assert report.errors == []
    stored = {a.title: a for a in app.store.recent_articles(100)}
    assert {"Partner item one", "Partner item two", "Atom entry", "JSON item", "RDF item"} <= set(
        stored
    )
    one = stored["Partner item one"]
    assert one.guid == "partner-1" and one.tags == ("research",)
    assert "<script" not in one.content_html and "onerror" not in one.content_html
    assert (
        'href="http://partner.example/rel"' in one.content_html
    )  # resolved against the entry link
    assert stored["Partner item two"].guid == "http://partner.example/two"  # no guid: the link
    atom = stored["Atom entry"]
    assert atom.url == "http://atom.example/blog/posts/1"  # xml:base
    assert 'href="http://atom.example/about"' in atom.content_html  # ../about against xml:base
    assert stored["JSON item"].author == "Jo" and stored["JSON item"].tags == ("research",)
    assert stored["RDF item"].published_at == datetime(2026, 11, 21, tzinfo=UTC)
    assert report.new == 5 + 7  # the markdown source still ran
    again = collecting.collect(app)
    assert again.new == 0 and again.updated == 0


def test_conditional_get_and_304_costs_no_parse(tmp_path: Path, feed_server: FeedServer) -> None:
    app = _app(tmp_path, feed_server, [("etag", "/etag.xml", "")])
    collecting.collect(app)
    [state] = [s for s in app.store.source_states() if s["source"] == "etag"]
    assert state["etag"] == '"v1"'
    second = collecting.collect(app)
    assert feed_server.conditional_hits == 1
    assert second.errors == [] and second.unchanged == 7  # only the markdown files were looked at


def test_bad_sources_are_reported_and_the_rest_collected(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    app = _app(
        tmp_path,
        feed_server,
        [
            ("good", "/rss2.xml", ""),
            ("missing", "/nope.xml", ""),
            ("laughs", "/laughs.xml", ""),
            ("xxe", "/xxe.xml", ""),
            ("broken", "/broken.xml", ""),
            ("big", "/big.xml", "max_bytes = 50000"),
            ("slow", "/slow.xml", ""),
            ("loop", "/hop/7", ""),
            ("metadata", "/metadata", ""),
        ],
    )
    report = collecting.collect(app)
    text = "\n".join(report.errors)
    assert "'missing'" in text and "HTTP 404" in text
    assert "'laughs'" in text and "declares XML entities" in text
    assert "'xxe'" in text and "root:" not in text
    assert "'broken'" in text and "malformed feed" in text
    assert "'big'" in text and "max_bytes" in text
    assert "'slow'" in text and "timed out" in text
    assert "'loop'" in text and "more than 5 redirects" in text
    assert "'metadata'" in text and "169.254.169.254" in text and "link-local" in text
    assert len(report.errors) == 8
    titles = {a.title for a in app.store.recent_articles(100)}
    assert {"Partner item one", "Partner item two"} <= titles
    assert not any("lol" in t for t in titles)
    failing = {s["source"]: s for s in app.store.source_states() if s["consecutive_failures"]}
    assert set(failing) == {"missing", "laughs", "xxe", "broken", "big", "slow", "loop", "metadata"}

    # The second failure in a row is not reported again; the third is, once.
    assert collecting.collect(app).errors == []
    third = collecting.collect(app).errors
    assert len(third) == 8 and all("failing for 3 runs in a row" in e for e in third)


def test_redirects_within_the_limit_are_followed(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/hop/4"), limits=FetchLimits(allow_private=True))  # 5 redirects
    assert result.status == 200 and result.url.endswith("/rss2.xml")


def test_ssrf_guard_refuses_private_addresses_unless_allowed(feed_server: FeedServer) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        fetch(feed_server.url("/rss2.xml"))
    with pytest.raises(FetchError, match="only http and https"):
        fetch("file:///etc/passwd")
    for address in ("10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "100.64.0.1"):
        with pytest.raises(FetchError):
            check_address(address, "h", allow_private=False)
    for address in ("169.254.169.254", "fe80::1"):
        with pytest.raises(FetchError):
            check_address(address, "h", allow_private=True)
    check_address("93.184.216.34", "h", allow_private=False)

    # The guard checks what the name resolves to, and connects to that very address.
    def rebinding_resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with pytest.raises(FetchError, match="not a public address"):
        fetch("http://feeds.example.com/rss.xml", resolver=rebinding_resolver)
    pinned = fetch(
        f"http://partner.test:{feed_server.port}/rss2.xml",
        resolver=rebinding_resolver,
        limits=FetchLimits(allow_private=True),
    )
    assert b"Partner item one" in pinned.body


def test_initial_items_and_tag_filters(tmp_path: Path, feed_server: FeedServer) -> None:
    app = _app(
        tmp_path,
        feed_server,
        [
            ("first", "/rss2.xml", "initial_items = 1"),
            ("filtered", "/feed.json", 'exclude_tags = ["sports"]\ntags = ["partner"]'),
        ],
    )
    collecting.collect(app)
    stored = {
        a.title: a for a in app.store.recent_articles(100) if a.source in ("first", "filtered")
    }
    assert set(stored) == {"Partner item two", "JSON item"}  # only the newest of "first"
    assert stored["JSON item"].tags == ("research", "partner")
    body = RSS2
    only_research = parse_feed(
        body, "http://p/", _source("s", "http://p/", include_tags=("research",)), NOW
    )
    assert [a.title for a in only_research] == ["Partner item one"]


def test_stable_guid_fallbacks() -> None:
    assert stable_guid("id-1", "http://x/", "t", NOW) == "id-1"
    assert stable_guid("", "http://x/a", "t", NOW) == "http://x/a"
    hashed = stable_guid("", "", "Title", NOW)
    assert hashed.startswith("sha256:") and hashed == stable_guid("", "", "Title", NOW)
    assert hashed != stable_guid("", "", "Title", None)


def test_feed_source_config_errors(tmp_path: Path) -> None:
    from publisher.errors import ConfigError

    base = write_config(tmp_path).read_text(encoding="utf-8")
    cases = {
        '[[sources]]\nname = "p"\ntype = "feed"\n': "a feed source needs 'url'",
        '[[sources]]\nname = "p"\ntype = "feed"\nurl = "ftp://x/feed"\n': "is not an absolute http(s) URL",
        '[[sources]]\nname = "p"\ntype = "feed"\nurl = "https://x/f"\ntimeout = 0\n': "timeout: must be more than 0",
        '[[sources]]\nname = "p"\ntype = "feed"\nurl = "https://x/f"\ninitial_item = 3\n': "did you mean 'initial_items'",
    }
    for block, message in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(base.replace("[feeds]", block + "\n[feeds]"), encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load(path)
