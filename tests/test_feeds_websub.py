"""WebSub: feeds advertise the hub, and a local HTTP server standing in as the hub
records the publish ping. A failing hub never fails the build and is retried."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from lxml import etree

from publisher.syndicate import websub
from tests.conftest import REPO, free_port, run_cli
from tests.feed_checks import A, check_json_feed, check_rss
from tests.test_feeds_build import FEEDS_URL, Site, make_article


@dataclass
class Hub:
    url: str
    pings: list[dict[str, list[str]]] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def hub() -> Iterator[Hub]:
    port = free_port()
    state = Hub(f"http://127.0.0.1:{port}/hub")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length).decode()
            assert self.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
            if state.status < 300:
                state.pings.append(parse_qs(body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_feeds_advertise_the_hub_and_the_build_pings_it(tmp_path: Path, hub: Hub) -> None:
    site = Site(tmp_path, f'per_tag = true\nwebsub_hub = "{hub.url}"\n')
    site.add(make_article(1, tags=("research",)))
    report = site.build()
    assert report.websub.startswith(f"pinged {hub.url}")
    [ping] = hub.pings
    assert ping["hub.mode"] == ["publish"]
    assert FEEDS_URL + "rss.xml" in ping["hub.url"]
    assert FEEDS_URL + "tags/research.atom.xml" in ping["hub.url"]
    assert len(ping["hub.url"]) == 6  # main and research, three formats each

    rss = check_rss(site.read("rss.xml"))
    assert rss.find(f"channel/{A}link[@rel='hub']").get("href") == hub.url
    assert rss.findtext("channel/link") == "https://news.example.org"  # still the site
    atom = etree.fromstring(site.read("atom.xml"))
    assert atom.find(f"{A}link[@rel='hub']").get("href") == hub.url
    feed = check_json_feed(site.read("feed.json"))
    assert feed["hubs"] == [{"type": "WebSub", "url": hub.url}]

    # Nothing changed: no ping.
    assert site.build().websub == ""
    assert len(hub.pings) == 1
    # One new article: the feeds that changed are announced.
    site.add(make_article(2, tags=("surgery",)))
    site.build()
    assert len(hub.pings) == 2
    assert FEEDS_URL + "tags/surgery.rss.xml" in hub.pings[1]["hub.url"]
    assert FEEDS_URL + "tags/research.rss.xml" not in hub.pings[1]["hub.url"]
    site.store.close()


def test_a_failing_hub_is_retried_on_the_next_build(tmp_path: Path, hub: Hub) -> None:
    site = Site(tmp_path, f'websub_hub = "{hub.url}"\n')
    site.add(make_article(1))
    hub.status = 503
    report = site.build()
    assert report.written  # the build itself succeeded
    assert len(report.warnings) == 1 and "answered 503" in report.warnings[0]
    assert "retry" in report.warnings[0]
    hub.status = 204
    retry = site.build()  # no feed changed, but the ping is still owed
    assert retry.written == [] and retry.websub
    assert sorted(hub.pings[0]["hub.url"]) == sorted(
        FEEDS_URL + n for n in ("rss.xml", "atom.xml", "feed.json")
    )
    assert site.build().websub == ""  # paid off
    site.store.close()


def test_unreachable_hub_warns_and_exits_0(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hub"
    site = Site(tmp_path, f'websub_hub = "{dead}"\nwebsub_timeout = 2\n')
    site.store.close()
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "a.md").write_bytes(
        (REPO / "content" / "crs-hipec-outcomes.md").read_bytes()
    )
    with site.path.open("a", encoding="utf-8") as handle:
        handle.write('\n[[sources]]\nname = "newsroom"\npath = "content"\n')
    result = run_cli(site.path, "run", "--once", now="2026-11-28T15:00:00+00:00")
    assert "feeds     wrote" in result.stdout
    assert f"warning: WebSub hub {dead}: ConnectError" in result.stderr
    with sqlite3.connect(tmp_path / "p.db") as db:
        [value] = db.execute("select value from settings where key = 'feeds_state'").fetchone()
    state = json.loads(value)
    assert len(state["websub_pending"]) == 3


def test_publish_raises_hub_error_with_the_status(hub: Hub) -> None:
    hub.status = 400
    with pytest.raises(websub.HubError, match="answered 400"):
        websub.publish(hub.url, ["https://news.example.org/feeds/rss.xml"])
    websub.publish(hub.url, [])  # nothing to announce: no request


def test_a_failing_hub_is_warned_about_once_per_run_and_its_recovery_noted(
    tmp_path: Path, hub: Hub
) -> None:
    """Separate `publisher feeds` processes: the run of failures is kept in the store."""
    site = Site(tmp_path, f'websub_hub = "{hub.url}"\n')
    site.add(make_article(1))
    site.store.close()
    feeds = lambda: run_cli(site.path, "feeds", now="2026-11-28T15:00:00+00:00")  # noqa: E731
    hub.status = 503
    first = feeds()
    assert f"warning: WebSub hub {hub.url} answered 503" in first.stderr
    assert "not warned again until the hub recovers" in first.stderr
    second = feeds()  # the ping is still owed and fails again: a note, not a warning
    assert "warning" not in second.stderr
    assert "websub    hub still failing since 2026-11-28T15:00:00+00:00 (2 attempts)" in second.stdout
    assert "answered 503" in second.stdout
    hub.status = 204
    third = feeds()
    assert "warning" not in third.stderr
    assert f"websub    pinged {hub.url} for 3 feed(s); the hub recovered after 2 failed" in third.stdout
    assert len(hub.pings) == 1
    with sqlite3.connect(tmp_path / "p.db") as db:
        [value] = db.execute("select value from settings where key = 'feeds_state'").fetchone()
    assert "websub_failing" not in json.loads(value)

    # A new article and a failing hub again: a new run of failures, warned about again.
    site = Site(tmp_path, f'websub_hub = "{hub.url}"\n')
    site.add(make_article(2))
    site.store.close()
    hub.status = 500
    fourth = feeds()
    assert f"warning: WebSub hub {hub.url} answered 500" in fourth.stderr
