"""Titles, authors and tags are plain text everywhere: collected from Markdown and from a
remote feed, read back from rss.xml/atom.xml (feedparser) and from the email (stdlib parser),
and cleaned by the 0006 data migration when they were stored with markup."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest
from alembic import command
from sqlalchemy import insert, select

from publisher.compose.sanitize import plain_text
from publisher.store import Store, _alembic_config
from publisher.store.schema import articles, settings
from tests.conftest import run_cli, write_config

NOW = "2026-11-28T15:00:00+00:00"

HOSTILE_MD = """---
title: "Clinical trial roundup <script>alert('x')</script> &amp; <b>more</b>"
date: 2026-11-27T09:00:00Z
author: "<em>Dana</em>\\r\\nWhitfield"
tags: ["<i>Trials</i>", research]
summary: "Three fictional trials in one post."
---
Body of the roundup.
"""

# An RSS title with escaped markup, as CMSs write it; author and category carry markup too.
HOSTILE_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Partner</title><link>http://partner.example/</link><description>d</description>
<item><title>Partner roundup &lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;news&lt;/b&gt;</title>
<link>http://partner.example/roundup</link><guid>partner-roundup</guid>
<pubDate>Fri, 27 Nov 2026 10:00:00 +0000</pubDate>
<dc:creator>&lt;b&gt;Jo&lt;/b&gt; Partner</dc:creator><category>&lt;i&gt;Oncology&lt;/i&gt;</category>
<description>Partner summary.</description></item>
<item><title>Fish &amp;amp; chips &lt;i&gt;study&lt;/i&gt;</title>
<link>http://partner.example/fish</link><guid>partner-fish</guid>
<pubDate>Fri, 27 Nov 2026 11:00:00 +0000</pubDate><description>Fish.</description></item>
</channel></rss>"""

EXPECTED = {
    "Clinical trial roundup & more",
    "Partner roundup news",
    "Fish & chips study",
}


@pytest.fixture
def feed_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(HOSTILE_RSS)))
            self.end_headers()
            self.wfile.write(HOSTILE_RSS)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/partner.xml"
    finally:
        server.shutdown()
        server.server_close()


def _assert_plain(title: str) -> None:
    assert "<" not in title and "&lt;" not in title and "&amp;" not in title, title


def test_titles_authors_and_tags_reach_feeds_and_email_as_plain_text(
    tmp_path: Path, feed_url: str
) -> None:
    extra_source = (
        f'[[sources]]\nname = "partner"\ntype = "feed"\nurl = "{feed_url}"\n'
        "allow_private = true\ntimeout = 5\n"
    )
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8").replace("[feeds]", extra_source + "\n[feeds]")
    config.write_text(text, encoding="utf-8")
    (tmp_path / "content" / "roundup.md").write_text(HOSTILE_MD, encoding="utf-8")
    run_cli(config, "subscribers", "add", "ana@example.org", "--name", "Ana", now=NOW)

    result = run_cli(config, "run", "--once", now=NOW)
    assert "1 sent" in result.stdout, result.stdout

    for name in ("rss.xml", "atom.xml"):
        parsed = feedparser.parse((tmp_path / "feeds" / name).read_bytes())
        titles = {e.title for e in parsed.entries}
        assert EXPECTED <= titles, (name, titles)
        for entry in parsed.entries:
            _assert_plain(entry.title)
            assert entry.title_detail.type == "text/plain", (name, entry.title_detail)
        by_title = {e.title: e for e in parsed.entries}
        assert by_title["Clinical trial roundup & more"].author == "Dana Whitfield"
        assert by_title["Partner roundup news"].author == "Jo Partner"
        terms = {t.term for t in by_title["Partner roundup news"].tags}
        assert terms == {"oncology"}, terms
        assert {t.term for t in by_title["Clinical trial roundup & more"].tags} == {
            "trials",
            "research",
        }
    raw_rss = (tmp_path / "feeds" / "rss.xml").read_text(encoding="utf-8")
    assert "&lt;" not in raw_rss.split("<item>", 1)[1].split("<description>", 1)[0]

    [eml] = sorted((tmp_path / "outbox").glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text_part = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html_part = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for title in EXPECTED:
        assert title in " ".join(text_part.split()), title
    assert "Clinical trial roundup &amp; more" in html_part  # escaped once, by Jinja2
    for bad in ("<script", "&lt;script", "&lt;b&gt;", "<b>more", "&amp;amp;", "alert("):
        assert bad not in text_part and bad not in html_part, bad


def test_migration_cleans_titles_stored_with_markup(store_url: str) -> None:
    store = Store.open(store_url, migrate=False)
    with store.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0005")
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    row = {
        "source": "newsroom",
        "url": "https://news.example.org/x/",
        "summary": "s",
        "content_html": "<p>Body <b>stays</b> HTML</p>",
        "content_hash": "h",
        "published_at": seen,
        "updated_at": seen,
        "first_seen_at": seen,
        "citations": "[]",
    }
    with store.engine.begin() as conn:
        conn.execute(
            insert(articles),
            [
                {
                    **row,
                    "guid": "old",
                    "feed_id": "tag:a",
                    "title": "Clinical trial roundup <script>alert(1)</script> &amp; <b>more</b>",
                    "author": "<em>Dana</em> Whitfield",
                    "tags": json.dumps(["<i>trials</i>", "research"]),
                },
                {
                    **row,
                    "guid": "clean",
                    "feed_id": "tag:b",
                    "title": "Dose < 5 mg, AT&T & R&D",
                    "author": "Jo",
                    "tags": "[]",
                },
            ],
        )
        conn.execute(
            insert(settings).values(key="feeds_state", value='{"files": {"rss.xml": "x"}}')
        )

    assert store.upgrade()[0] == "0006_plain_titles"  # later migrations follow it

    with store.engine.connect() as conn:
        stored = {r.guid: r for r in conn.execute(select(articles))}
        state = conn.scalar(select(settings.c.value).where(settings.c.key == "feeds_state"))
    store.close()
    old = stored["old"]
    assert old.title == "Clinical trial roundup & more"
    assert old.author == "Dana Whitfield"
    assert json.loads(old.tags) == ["trials", "research"]
    assert old.content_html == "<p>Body <b>stays</b> HTML</p>"  # bodies are HTML and stay so
    assert stored["clean"].title == "Dose < 5 mg, AT&T & R&D"  # text that only looks like markup
    assert state is None  # the feeds are rebuilt with the clean titles on the next run


@pytest.mark.parametrize(
    ("raw", "html", "plain"),
    [
        ("Clinical trial roundup <script>alert(1)</script>", True, "Clinical trial roundup"),
        ("Fish &amp;amp; chips", True, "Fish &amp; chips"),  # decoded once, not twice
        ("Fish &amp; chips", False, "Fish &amp; chips"),  # already text: kept
        (
            "<b>Line</b>\r\none<br>two &#13;&#10;Bcc: x@example.org",
            True,
            "Line one two Bcc: x@example.org",
        ),
        ("How to use the <script> tag", True, "How to use the tag"),  # unclosed: text kept
        ("A < B and AT&T", True, "A < B and AT&T"),
        ("  spaced\tout\u2028 ", True, "spaced out"),
    ],
)
def test_plain_text(raw: str, html: bool, plain: str) -> None:
    assert plain_text(raw, html=html) == plain
