"""Remote feed source: RSS 0.9x/1.0/2.0, Atom and JSON Feed fetched over HTTP.

:func:`parse_feed` is pure: bytes in, articles out. feedparser only ever receives bytes
(given a string it would open local paths and ``file://`` URLs), and a document that
declares XML entities is refused before parsing, so entity-expansion ("billion laughs")
and external-entity (XXE) documents never expand or reach out. JSON Feed is read with the
standard library. Every entry's HTML goes through the same nh3 allow-list as Markdown
articles, with relative URLs resolved against ``xml:base`` or the feed's URL.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import feedparser

from publisher.collect.fetch import FetchLimits
from publisher.compose.sanitize import (
    absolute_url,
    clean_header_text,
    clean_html,
    excerpt,
    html_to_text,
    plain_text,
)
from publisher.config import SourceConfig
from publisher.errors import ContentError
from publisher.models import Article

SUMMARY_WORDS = 40
_ENTITY = re.compile(rb"<!ENTITY", re.I)
# feedparser's content types whose values are still HTML (entities not yet decoded).
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, TypeError, ValueError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _http(url: str, base: str) -> str:
    resolved = absolute_url(url or "", base)
    return resolved if resolved.lower().startswith(("http://", "https://")) else ""


def stable_guid(entry_id: str, link: str, title: str, date: datetime | None) -> str:
    """The entry's id, else its link, else a hash of its title and date."""
    if entry_id:
        return entry_id[:1000]
    if link:
        return link[:1000]
    seed = f"{title}\n{date.isoformat() if date else ''}"
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _article(
    source: SourceConfig,
    *,
    guid: str,
    title: str,
    link: str,
    html: str,
    summary_html: str,
    author: str,
    tags: list[str],
    image: str,
    published: datetime | None,
    updated: datetime | None,
    base: str,
    now: datetime,
    title_is_html: bool = False,
) -> Article:
    # Titles, authors and tags are plain text everywhere; only a title feedparser marked as
    # HTML still has entities to decode (it already decoded the others, once).
    title = plain_text(title, html=title_is_html) or "(untitled)"
    body = clean_html(html or summary_html, link or base)
    summary_source = html_to_text(summary_html) if summary_html else html_to_text(body)
    summary = excerpt(clean_header_text(summary_source, max_length=5000), SUMMARY_WORDS)
    clean_tags = tuple(
        dict.fromkeys(t for t in (plain_text(x, html=False).lower() for x in tags) if t)
    )
    published = published or updated or now
    updated = max(updated or published, published)
    digest = hashlib.sha256(
        json.dumps([title, link, body, summary, author, clean_tags, image]).encode()
    ).hexdigest()
    return Article(
        source=source.name,
        guid=guid,
        title=title,
        url=link or base,
        published_at=published,
        updated_at=updated,
        content_html=body,
        summary=summary,
        author=plain_text(author, html=False),
        tags=clean_tags,
        image=image or None,
        content_hash=digest,
    )


def _json_feed(body: bytes, url: str, source: SourceConfig, now: datetime) -> list[Article]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ContentError(f"not a valid JSON Feed: {exc}") from exc
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ContentError("JSON document is not a JSON Feed (no jsonfeed.org version)")
    base = _http(str(data.get("home_page_url") or ""), url) or url
    articles = []
    for item in data.get("items") or []:
        if not isinstance(item, dict):
            continue
        link = _http(str(item.get("url") or item.get("external_url") or ""), base)
        published = _iso(item.get("date_published"))
        authors = item.get("authors") or (
            [item["author"]] if isinstance(item.get("author"), dict) else []
        )
        author = ", ".join(str(a.get("name", "")) for a in authors if isinstance(a, dict))
        title = str(item.get("title") or "")
        articles.append(
            _article(
                source,
                guid=stable_guid(str(item.get("id") or ""), link, title, published),
                title=title or excerpt(str(item.get("content_text") or ""), 12),
                link=link,
                html=str(item.get("content_html") or "")
                or f"<p>{_escape(str(item.get('content_text') or ''))}</p>",
                summary_html=_escape(str(item.get("summary") or "")),
                author=author,
                tags=[str(t) for t in item.get("tags") or [] if isinstance(t, str | int)],
                image=_http(str(item.get("image") or ""), base),
                published=published,
                updated=_iso(item.get("date_modified")),
                base=base,
                now=now,
            )
        )
    return articles


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_feed(body: bytes, url: str, source: SourceConfig, now: datetime) -> list[Article]:
    if _ENTITY.search(body[:65536]):
        raise ContentError("refused: the document declares XML entities (entity expansion / XXE)")
    # No content-location: feedparser would also "resolve" plain guids into URLs, so ids
    # would change if the feed moved. xml:base is still applied; the rest we resolve below.
    try:
        parsed = feedparser.parse(body)
    except Exception as exc:  # noqa: BLE001 - hostile bytes must never escape as a crash
        raise ContentError(f"malformed feed: {type(exc).__name__}: {exc}") from exc
    entries = parsed.get("entries") or []
    if parsed.get("bozo") and not entries:
        reason = (str(parsed.get("bozo_exception") or "not a feed").splitlines() or ["not a feed"])[
            0
        ]
        raise ContentError(f"malformed feed: {reason}")
    if not parsed.get("version") and not entries:
        raise ContentError("not an RSS, Atom or JSON feed")
    base = _http(parsed.get("feed", {}).get("link", ""), url) or url
    articles = []
    for entry in entries:
        link = _http(entry.get("link", ""), base)
        published = _struct_time(entry.get("published_parsed")) or _struct_time(
            entry.get("created_parsed")
        )
        # dict.get: FeedParserDict.get would fall back to published_parsed, with a warning.
        updated = _struct_time(dict.get(entry, "updated_parsed"))
        contents = entry.get("content") or []
        html_content = next((c.value for c in contents if "html" in c.get("type", "")), "")
        html_content = html_content or (contents[0].value if contents else "")
        summary_html = entry.get("summary", "")
        image = ""
        for enclosure in entry.get("enclosures", []):
            if str(enclosure.get("type", "")).startswith("image/"):
                image = _http(enclosure.get("href", ""), base)
                break
        if not image and entry.get("media_thumbnail"):
            image = _http(entry["media_thumbnail"][0].get("url", ""), base)
        title = entry.get("title", "")
        title_type = (entry.get("title_detail") or {}).get("type", "text/plain")
        articles.append(
            _article(
                source,
                guid=stable_guid(entry.get("id", ""), link, title, published or updated),
                title=title,
                link=link,
                html=html_content,
                summary_html=summary_html if html_content else "",
                author=entry.get("author", ""),
                tags=[t.get("term", "") for t in entry.get("tags", []) if t.get("term")],
                image=image,
                published=published,
                updated=updated,
                base=base,
                now=now,
                title_is_html=title_type in _HTML_TYPES,
            )
        )
    return articles


def parse_feed(body: bytes, url: str, source: SourceConfig, now: datetime) -> list[Article]:
    """Articles of a fetched feed document, filtered and tagged as the source says (pure)."""
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        articles = _json_feed(body, url, source, now)
    else:
        articles = _xml_feed(body, url, source, now)
    return filter_entries(articles, source)


def filter_entries(articles: list[Article], source: SourceConfig) -> list[Article]:
    """Apply ``include_tags``/``exclude_tags`` and add the source's ``tags``."""
    include, exclude = set(source.include_tags), set(source.exclude_tags)
    kept = []
    for article in articles:
        if include and not include.intersection(article.tags):
            continue
        if exclude.intersection(article.tags):
            continue
        if source.tags:
            tags = tuple(dict.fromkeys((*article.tags, *source.tags)))
            article = Article(**{**article.__dict__, "tags": tags})
        kept.append(article)
    return kept


def limits_for(source: SourceConfig) -> FetchLimits:
    """The fetch limits configured on ``source``."""
    return FetchLimits(
        connect_timeout=source.timeout,
        read_timeout=source.timeout,
        total_timeout=source.timeout,
        max_bytes=source.max_bytes,
        allow_private=source.allow_private,
    )
