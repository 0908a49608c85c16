"""Feeds (pure): articles and channel data in, RSS 2.0 / Atom 1.0 / JSON Feed 1.1 bytes out.

RSS and Atom are built with feedgen, one generator per format so that a self link never
leaks from one format into the other. JSON Feed is written by :func:`json_feed`. Dates
come from the articles, never from the clock: the feed's ``lastBuildDate``/``updated`` is
the newest article's ``updated_at``, so rebuilding unchanged content gives the same bytes.

Besides the three subscription formats this module writes RFC 5005 archive pages
(:func:`atom_archive`); the OPML list and the HTML index of feeds are in
:mod:`publisher.syndicate.listings`. No function here reads the clock or the disk.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher import __version__
from publisher.models import Article

GENERATOR = "publisher"
GENERATOR_URL = "https://github.com/publisher/publisher"
FILENAMES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
ATOM_NS = "http://www.w3.org/2005/Atom"
FH_NS = "http://purl.org/syndication/history/1.0"
ARCHIVE_DIR = "archive"
DEFAULT_TTL = 60
# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (control characters)."""
    return _NOT_XML.sub("", text)


@dataclass(frozen=True)
class Channel:
    """What a feed says about itself.

    ``prefix`` is the feed's path below ``feeds_url`` before the format's file name:
    ``""`` for the main feed (``rss.xml``), ``"tags/research."`` for a topic feed
    (``tags/research.rss.xml``). ``hub`` is a WebSub hub to advertise; ``prev_archive``
    the newest RFC 5005 archive page (Atom only); ``feed_id`` the Atom feed id (default:
    the site URL).
    """

    title: str
    site_url: str
    feeds_url: str
    description: str
    language: str
    author: str
    prefix: str = ""
    hub: str = ""
    prev_archive: str = ""
    feed_id: str = ""
    ttl: int = DEFAULT_TTL

    def path(self, kind: str) -> str:
        """This channel's feed of ``kind``, relative to the feeds folder."""
        return f"{self.prefix}{FILENAMES[kind]}"

    def self_url(self, kind: str) -> str:
        """The public URL of this channel's feed of ``kind``."""
        return f"{self.feeds_url.rstrip('/')}/{self.path(kind)}"

    @property
    def atom_id(self) -> str:
        """The Atom feed id: ``feed_id`` when given, else the site URL.

        A bare origin gets its trailing slash: ``https://host`` and ``https://host/`` are the
        same resource, and RFC 4287 ids are compared as strings, so the canonical form keeps
        validators (and readers that normalise) from seeing two feeds.
        """
        if self.feed_id:
            return self.feed_id
        parts = urlsplit(self.site_url)
        return self.site_url + "/" if parts.scheme and parts.netloc and not parts.path else self.site_url


def archive_path(page: int) -> str:
    """The path of Atom archive page ``page`` (1 is the oldest), relative to the feeds folder."""
    return f"{ARCHIVE_DIR}/{page}.{FILENAMES['atom']}"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the feed writer")
    return value


def _updated(articles: Sequence[Article], fallback: datetime) -> datetime:
    return max((_aware(a.updated_at) for a in articles), default=_aware(fallback))


class _Extras(BaseExtension):
    """Adds the links feedgen cannot write itself (hub, archives) and ``fh:archive``."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str]] = []  # (rel, href, type)
        self.archive = False

    def extend_ns(self) -> dict[str, str]:
        """The RFC 5005 namespace, when this is an archive page."""
        return {"fh": FH_NS} if self.archive else {}

    def _append(self, parent: Any, tag: str) -> None:
        for rel, href, media_type in self.links:
            link = etree.SubElement(parent, tag, href=href, rel=rel)
            if media_type:
                link.set("type", media_type)

    def extend_rss(self, feed: Any) -> Any:
        """Append atom:link elements to the RSS channel."""
        self._append(feed[0], f"{{{ATOM_NS}}}link")
        return feed

    def extend_atom(self, feed: Any) -> Any:
        """Append links (and ``fh:archive``) to the Atom feed."""
        # feedgen writes the Atom tree un-namespaced under a literal xmlns attribute, so a
        # namespaced link would be serialised with a stray ``ns0:`` prefix (validators warn).
        self._append(feed, "link" if not feed.tag.startswith("{") else f"{{{ATOM_NS}}}link")
        if self.archive:
            etree.SubElement(feed, f"{{{FH_NS}}}archive")
        return feed


class _NoEntryExtras(BaseEntryExtension):
    """Entries need nothing from :class:`_Extras`."""


@dataclass
class _Links:
    """Extra links of one document: (rel, href, type)."""

    items: list[tuple[str, str, str]] = field(default_factory=list)
    archive: bool = False


def _base(
    channel: Channel, kind: str, updated: datetime, self_url: str, extras: _Links
) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("publisher_extras", _Extras, _NoEntryExtras)
    ext: _Extras = fg.publisher_extras
    ext.links = list(extras.items)
    ext.archive = extras.archive
    if channel.hub:
        ext.links.insert(0, ("hub", channel.hub, ""))
    fg.title(xml_safe(channel.title) or "Untitled")
    fg.id(channel.atom_id)
    fg.language(channel.language)
    fg.generator(GENERATOR, __version__, GENERATOR_URL)
    if channel.author:
        fg.author({"name": xml_safe(channel.author)})
    # feedgen takes the RSS channel <link> from the last link() call: self first.
    fg.link(href=self_url, rel="self", type=MEDIA_TYPES[kind])
    fg.link(href=channel.site_url, rel="alternate", type="text/html")
    fg.updated(updated)
    return fg


def _image_type(url: str) -> str | None:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed if guessed and guessed.startswith("image/") else None


def _author(article: Article, channel: Channel) -> str:
    """The entry's author, else the channel's author, else the channel's title."""
    return xml_safe(article.author or channel.author or channel.title) or "Unknown"


def rss(articles: Sequence[Article], channel: Channel, now: datetime) -> bytes:
    """RSS 2.0: content:encoded (full HTML), dc:creator, enclosure, atom:link rel=self."""
    updated = _updated(articles, now)
    fg = _base(channel, "rss", updated, channel.self_url("rss"), _Links())
    fg.load_extension("dc", atom=False, rss=True)
    fg.description(xml_safe(channel.description or channel.title) or "Untitled")
    fg.lastBuildDate(updated)
    fg.ttl(channel.ttl)
    for article in articles:
        fe = fg.add_entry(order="append")
        fe.title(xml_safe(article.title))
        fe.link(href=article.url)
        fe.guid(article.feed_id, permalink=article.feed_id == article.url)
        fe.description(xml_safe(article.summary or article.title))
        fe.content(xml_safe(article.content_html), type="html")
        fe.pubDate(_aware(article.published_at))
        fe.dc.dc_creator(_author(article, channel))
        for tag in article.tags:
            fe.category(term=xml_safe(tag))
        if article.image and (media_type := _image_type(article.image)):
            # RSS requires a length; 0 is the convention when it is not known.
            fe.enclosure(article.image, 0, media_type)
    return fg.rss_str(pretty=True)


def _atom_entries(fg: FeedGenerator, articles: Sequence[Article], channel: Channel) -> None:
    for article in articles:
        fe = fg.add_entry(order="append")
        fe.id(article.feed_id)
        fe.title(xml_safe(article.title))
        fe.link(href=article.url, rel="alternate", type="text/html")
        fe.published(_aware(article.published_at))
        fe.updated(_aware(article.updated_at))
        if article.summary:
            fe.summary(xml_safe(article.summary))
        fe.content(xml_safe(article.content_html), type="html")
        fe.author({"name": _author(article, channel)})
        for tag in article.tags:
            fe.category(term=xml_safe(tag))


def atom(articles: Sequence[Article], channel: Channel, now: datetime) -> bytes:
    """Atom 1.0 with stable entry ids, summary and full HTML content."""
    links = _Links()
    if channel.prev_archive:
        links.items.append(("prev-archive", channel.prev_archive, MEDIA_TYPES["atom"]))
    fg = _base(channel, "atom", _updated(articles, now), channel.self_url("atom"), links)
    if channel.description:
        fg.subtitle(xml_safe(channel.description))
    _atom_entries(fg, articles, channel)
    return fg.atom_str(pretty=True)


def atom_archive(
    articles: Sequence[Article], channel: Channel, page: int, has_next: bool, now: datetime
) -> bytes:
    """Atom archive page ``page`` (RFC 5005): ``fh:archive``, current and prev/next-archive.

    Page 1 is the oldest. ``has_next`` says whether a newer page exists; the newest page
    links to no next-archive (its newer entries are in the subscription document).
    """
    base = channel.feeds_url.rstrip("/")
    links = _Links(archive=True)
    links.items.append(("current", channel.self_url("atom"), MEDIA_TYPES["atom"]))
    if page > 1:
        links.items.append(
            ("prev-archive", f"{base}/{archive_path(page - 1)}", MEDIA_TYPES["atom"])
        )
    if has_next:
        links.items.append(
            ("next-archive", f"{base}/{archive_path(page + 1)}", MEDIA_TYPES["atom"])
        )
    self_url = f"{base}/{archive_path(page)}"
    fg = _base(channel, "atom", _updated(articles, now), self_url, links)
    fg.title(xml_safe(f"{channel.title} (archive page {page})"))
    _atom_entries(fg, articles, channel)
    return fg.atom_str(pretty=True)


def _rfc3339(value: datetime) -> str:
    return _aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


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
    if channel.hub:
        feed["hubs"] = [{"type": "WebSub", "url": channel.hub}]
    items = []
    for article in articles:
        item: dict[str, object] = {
            "id": article.feed_id,
            "url": article.url,
            "title": article.title,
            "content_html": article.content_html,
            "summary": article.summary or article.title,
            "date_published": _rfc3339(article.published_at),
            "date_modified": _rfc3339(article.updated_at),
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
