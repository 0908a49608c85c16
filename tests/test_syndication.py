"""Tests for publisher.syndicate.model: RSS 2.0, Atom 1.0 and JSON Feed 1.1 bytes.

RSS and Atom are read back with feedparser (always from bytes). feedparser 6.0 has no
JSON Feed support, so the JSON feed is read back with :func:`json.loads`.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from lxml import etree

from publisher.collect.markdown import parse_article
from publisher.models import Article
from publisher.syndicate import model as syndication
from publisher.syndicate.model import Channel

SITE = "https://news.example.org/"
FEEDS = "https://news.example.org/feeds/"
ATOM_NS = "http://www.w3.org/2005/Atom"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
NASTY_TITLE = "Ends ]]> here <script>alert(1)</script> & more 😀 — ünïcode"


def article(
    n: int, title: str | None = None, content_html: str | None = None, **changes
) -> Article:
    published = datetime(2026, 11, 20, 9, 0, tzinfo=UTC) - timedelta(days=n)
    fields = {
        "source": "newsroom",
        "guid": f"story-{n}",
        "title": title or f"Story number {n}",
        "url": f"https://news.example.org/story-{n}/",
        "published_at": published,
        "updated_at": published + timedelta(hours=n + 1),
        "content_html": content_html or f"<p>Full <b>body</b> of story {n}.</p>",
        "summary": f"Summary of story {n}.",
        "author": "Dana Whitfield",
        "tags": ("research", f"tag-{n}"),
        "image": f"https://news.example.org/images/{n}.jpg",
        "feed_id": f"tag:news.example.org,2026-11-{20 - n:02d}:story-{n}",
    }
    fields.update(changes)
    return Article(**fields)


@pytest.fixture
def channel() -> Channel:
    return Channel(
        title="Pleura Health News",
        site_url=SITE,
        feeds_url=FEEDS,
        description="Research news on mesothelioma.",
        language="en",
        author="Pleura Health News newsroom",
    )


@pytest.fixture
def articles() -> list[Article]:
    return [article(0), article(1), article(2)]  # newest first


def parse_xml(data: bytes) -> feedparser.FeedParserDict:
    etree.fromstring(data)  # well-formed XML, or this raises
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


# --- RSS and Atom ------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "version"), [("rss", "rss20"), ("atom", "atom10")])
def test_xml_feed_entries(
    kind: str, version: str, articles: list[Article], channel: Channel
) -> None:
    parsed = parse_xml(syndication.build(kind, articles, channel, NOW))
    assert parsed.version == version
    assert parsed.feed.title == "Pleura Health News"
    assert len(parsed.entries) == 3
    assert [e.id for e in parsed.entries] == [a.feed_id for a in articles]
    assert [e.title for e in parsed.entries] == [a.title for a in articles]
    assert [e.link for e in parsed.entries] == [a.url for a in articles]
    for entry, source in zip(parsed.entries, articles, strict=True):
        assert entry.content[0].value == source.content_html
        assert entry.summary == source.summary
        assert entry.published_parsed[:6] == source.published_at.timetuple()[:6]
        assert [t.term for t in entry.tags] == list(source.tags)
        assert entry.author == "Dana Whitfield"


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_entries_keep_the_given_order(kind: str, channel: Channel) -> None:
    given = [article(2), article(0), article(1)]
    parsed = parse_xml(syndication.build(kind, given, channel, NOW))
    assert [e.id for e in parsed.entries] == [a.feed_id for a in given]


def test_rss_channel_link_is_the_site_and_self_link_is_atom(
    articles: list[Article], channel: Channel
) -> None:
    data = syndication.rss(articles, channel, NOW)
    root = etree.fromstring(data)
    assert root.findtext("channel/link") == SITE
    self_links = root.findall(f"channel/{{{ATOM_NS}}}link[@rel='self']")
    assert [link.get("href") for link in self_links] == [f"{FEEDS}rss.xml"]
    assert root.find("channel/item/{http://purl.org/rss/1.0/modules/content/}encoded") is not None
    assert feedparser.parse(data).feed.link == SITE


def test_rss_guid_is_not_a_permalink(articles: list[Article], channel: Channel) -> None:
    root = etree.fromstring(syndication.rss(articles, channel, NOW))
    guids = root.findall("channel/item/guid")
    assert [g.text for g in guids] == [a.feed_id for a in articles]
    assert {g.get("isPermaLink") for g in guids} == {"false"}


def test_rss_dates_come_from_the_articles(articles: list[Article], channel: Channel) -> None:
    root = etree.fromstring(syndication.rss(articles, channel, NOW))
    assert root.findtext("channel/lastBuildDate") == "Fri, 20 Nov 2026 10:00:00 +0000"


def test_atom_feed_links_and_dates(articles: list[Article], channel: Channel) -> None:
    data = syndication.atom(articles, channel, NOW)
    root = etree.fromstring(data)
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{{{ATOM_NS}}}link")}
    assert links == {"self": f"{FEEDS}atom.xml", "alternate": SITE}
    assert root.findtext(f"{{{ATOM_NS}}}id") == SITE
    assert root.findtext(f"{{{ATOM_NS}}}updated") == "2026-11-20T10:00:00+00:00"
    parsed = parse_xml(data)
    for entry, source in zip(parsed.entries, articles, strict=True):
        assert entry.updated_parsed[:6] == source.updated_at.timetuple()[:6]


def test_atom_entry_author_falls_back_to_the_channel(channel: Channel) -> None:
    parsed = parse_xml(syndication.atom([article(0, author="")], channel, NOW))
    assert parsed.entries[0].author == "Pleura Health News newsroom"


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_building_twice_gives_identical_bytes(
    kind: str, articles: list[Article], channel: Channel
) -> None:
    first = syndication.build(kind, articles, channel, NOW)
    later = syndication.build(kind, articles, channel, NOW + timedelta(days=400))
    assert first == later


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_empty_feed_is_valid(kind: str, channel: Channel) -> None:
    data = syndication.build(kind, [], channel, NOW)
    if kind == "json":
        assert json.loads(data)["items"] == []
    else:
        assert parse_xml(data).entries == []


# --- JSON Feed ---------------------------------------------------------------------------


def test_json_feed(articles: list[Article], channel: Channel) -> None:
    feed = json.loads(syndication.json_feed(articles, channel, NOW))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "Pleura Health News"
    assert feed["home_page_url"] == SITE
    assert feed["feed_url"] == f"{FEEDS}feed.json"
    assert feed["authors"] == [{"name": "Pleura Health News newsroom"}]
    assert [item["id"] for item in feed["items"]] == [a.feed_id for a in articles]
    for item, source in zip(feed["items"], articles, strict=True):
        assert item["url"] == source.url
        assert item["title"] == source.title
        assert item["content_html"] == source.content_html
        assert item["summary"] == source.summary
        assert item["image"] == source.image
        assert item["tags"] == list(source.tags)
        assert item["authors"] == [{"name": "Dana Whitfield"}]
        published = datetime.fromisoformat(item["date_published"].replace("Z", "+00:00"))
        assert published == source.published_at
        assert item["date_published"].endswith("Z")
        modified = datetime.fromisoformat(item["date_modified"].replace("Z", "+00:00"))
        assert modified == source.updated_at


def test_json_feed_omits_empty_optional_fields(channel: Channel) -> None:
    feed = json.loads(syndication.json_feed([article(0, author="", image=None)], channel, NOW))
    assert "authors" not in feed["items"][0]
    assert "image" not in feed["items"][0]


# --- hostile text ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_hostile_title_still_gives_well_formed_xml(kind: str) -> None:
    hostile_channel = Channel(NASTY_TITLE, SITE, FEEDS, NASTY_TITLE, "en", NASTY_TITLE)
    items = [
        article(0, title=NASTY_TITLE, content_html="<p>x ]]&gt; y 😀</p>", summary=NASTY_TITLE)
    ]
    parsed = parse_xml(syndication.build(kind, items, hostile_channel, NOW))
    assert parsed.feed.title == NASTY_TITLE
    assert parsed.entries[0].title == NASTY_TITLE
    assert parsed.entries[0].content[0].value == "<p>x ]]&gt; y 😀</p>"


def test_hostile_title_in_json_feed() -> None:
    hostile_channel = Channel(NASTY_TITLE, SITE, FEEDS, NASTY_TITLE, "en", NASTY_TITLE)
    data = syndication.json_feed([article(0, title=NASTY_TITLE)], hostile_channel, NOW)
    data.decode("utf-8")
    feed = json.loads(data)
    assert feed["title"] == NASTY_TITLE
    assert feed["items"][0]["title"] == NASTY_TITLE


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_control_characters_in_markdown_still_give_a_feed(kind: str, channel: Channel) -> None:
    raw = (
        b"---\ntitle: Pasted from a word processor\ndate: 2026-11-20T09:00:00Z\n---\n"
        b"First line\x0bsecond line\x0cnext page \x01 end.\n"
    )
    collected = parse_article(raw, "pasted.md", "newsroom", "https://news.example.org")
    item = dataclasses.replace(collected, feed_id="tag:news.example.org,2026:pasted")
    parsed = parse_xml(syndication.build(kind, [item], channel, NOW))
    assert parsed.entries[0].title == "Pasted from a word processor"


def test_atom_id_of_a_bare_origin_is_canonical(channel: Channel) -> None:
    """The W3C validator warns on ``https://host`` as an id; the canonical form has the slash."""
    bare = dataclasses.replace(channel, site_url="https://news.example.org")
    root = etree.fromstring(syndication.atom([article(0)], bare, NOW))
    assert root.findtext(f"{{{ATOM_NS}}}id") == "https://news.example.org/"
    with_path = dataclasses.replace(channel, site_url="https://example.org/news")
    assert with_path.atom_id == "https://example.org/news"


def test_archive_links_carry_no_stray_namespace_prefix(channel: Channel) -> None:
    """The extra links sit in the Atom default namespace, not under an ``ns0:`` prefix."""
    data = syndication.atom_archive([article(0)], channel, page=2, has_next=True, now=NOW)
    assert b"ns0:" not in data and b"ns1:" not in data
    root = etree.fromstring(data)
    rels = {link.get("rel") for link in root.findall(f"{{{ATOM_NS}}}link")}
    assert {"current", "prev-archive", "next-archive", "self"} <= rels
