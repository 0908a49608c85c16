"""Feeds (pure): articles and channel data in, RSS 2.0 / Atom 1.0 / JSON Feed 1.1 bytes out.

RSS and Atom are built with feedgen, one generator per format so that a self link never
leaks from one format into the other. JSON Feed is written by :func:`json_feed`. Dates
come from the articles, never from the clock: the feed's ``lastBuildDate``/``updated`` is
the newest article's ``updated_at``, so rebuilding unchanged content gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from feedgen.feed import FeedGenerator

from publisher import __version__
from publisher.models import Article

GENERATOR = "publisher"
GENERATOR_URL = "https://github.com/publisher/publisher"
FILENAMES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}


@dataclass(frozen=True)
class Channel:
    """What a feed says about itself."""

    title: str
    site_url: str
    feeds_url: str
    description: str
    language: str
    author: str

    def self_url(self, kind: str) -> str:
        """The public URL of this channel's feed of ``kind``."""
        return f"{self.feeds_url.rstrip('/')}/{FILENAMES[kind]}"


def _updated(articles: Sequence[Article], fallback: datetime) -> datetime:
    return max((a.updated_at for a in articles), default=fallback)


def _base(channel: Channel, kind: str, updated: datetime) -> FeedGenerator:
    fg = FeedGenerator()
    fg.title(channel.title)
    fg.id(channel.site_url)
    fg.language(channel.language)
    fg.generator(GENERATOR, __version__, GENERATOR_URL)
    if channel.author:
        fg.author({"name": channel.author})
    # feedgen takes the RSS channel <link> from the last link() call: self first.
    fg.link(href=channel.self_url(kind), rel="self")
    fg.link(href=channel.site_url, rel="alternate")
    fg.updated(updated)
    return fg


def rss(articles: Sequence[Article], channel: Channel, now: datetime) -> bytes:
    """RSS 2.0 with content:encoded (full HTML), dc:creator and atom:link rel=self."""
    updated = _updated(articles, now)
    fg = _base(channel, "rss", updated)
    fg.load_extension("dc", atom=False, rss=True)
    fg.description(channel.description or channel.title)
    fg.lastBuildDate(updated)
    fg.ttl(60)
    for article in articles:
        fe = fg.add_entry(order="append")
        fe.title(article.title)
        fe.link(href=article.url)
        fe.guid(article.feed_id, permalink=article.feed_id == article.url)
        fe.description(article.summary or article.title)
        fe.content(article.content_html, type="html")
        fe.pubDate(article.published_at)
        if article.author:
            fe.dc.dc_creator(article.author)
        for tag in article.tags:
            fe.category(term=tag)
    return fg.rss_str(pretty=True)


def atom(articles: Sequence[Article], channel: Channel, now: datetime) -> bytes:
    """Atom 1.0 with stable entry ids, summary and full HTML content."""
    fg = _base(channel, "atom", _updated(articles, now))
    if channel.description:
        fg.subtitle(channel.description)
    for article in articles:
        fe = fg.add_entry(order="append")
        fe.id(article.feed_id)
        fe.title(article.title)
        fe.link(href=article.url, rel="alternate")
        fe.published(article.published_at)
        fe.updated(article.updated_at)
        if article.summary:
            fe.summary(article.summary)
        fe.content(article.content_html, type="html")
        fe.author({"name": article.author or channel.author or channel.title})
        for tag in article.tags:
            fe.category(term=tag)
    return fg.atom_str(pretty=True)


def json_feed(articles: Sequence[Article], channel: Channel, now: datetime) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": channel.title,
        "home_page_url": channel.site_url,
        "feed_url": channel.self_url("json"),
        "language": channel.language,
    }
    if channel.description:
        feed["description"] = channel.description
    if channel.author:
        feed["authors"] = [{"name": channel.author}]
    items = []
    for article in articles:
        item: dict[str, object] = {
            "id": article.feed_id,
            "url": article.url,
            "title": article.title,
            "content_html": article.content_html,
            "summary": article.summary,
            "date_published": article.published_at.isoformat().replace("+00:00", "Z"),
            "date_modified": article.updated_at.isoformat().replace("+00:00", "Z"),
            "tags": list(article.tags),
        }
        if article.author:
            item["authors"] = [{"name": article.author}]
        if article.image:
            item["image"] = article.image
        items.append(item)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


BUILDERS: dict[str, Callable[[Sequence[Article], Channel, datetime], bytes]] = {
    "rss": rss,
    "atom": atom,
    "json": json_feed,
}


def build(kind: str, articles: Sequence[Article], channel: Channel, now: datetime) -> bytes:
    """The feed of ``kind`` (``rss``, ``atom`` or ``json``) for ``articles`` (newest first)."""
    return BUILDERS[kind](articles, channel, now)
