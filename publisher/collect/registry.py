"""Collectors of articles (I/O edge): a registry from ``[[sources]] type`` to a collector.

A collector takes its SourceConfig, the site URL, what the store remembers of the source
(ETag, Last-Modified, whether it ran before) and ``now``, and returns a :class:`Collected`:
the articles it found, one error line per item it had to skip, or the reason the whole
source failed. One broken file or feed never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from publisher.collect import feed, markdown
from publisher.collect.fetch import fetch
from publisher.config import SourceConfig
from publisher.errors import ContentError
from publisher.models import Article


@dataclass(frozen=True)
class SourceState:
    """What the store remembers of a source between runs."""

    etag: str | None = None
    last_modified: str | None = None
    seen_before: bool = False


@dataclass
class Collected:
    """The result of collecting one source."""

    articles: list[Article] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    failed: str | None = None


Collector = Callable[[SourceConfig, str, SourceState, datetime], Collected]


def _markdown(source: SourceConfig, site_url: str, state: SourceState, now: datetime) -> Collected:
    articles, errors = markdown.collect(source, site_url)
    failed = (
        errors[0] if errors and not articles and source.path and not source.path.is_dir() else None
    )
    return Collected(articles=articles, errors=[] if failed else errors, failed=failed)


def _feed(source: SourceConfig, site_url: str, state: SourceState, now: datetime) -> Collected:
    assert source.url is not None
    try:
        result = fetch(
            source.url,
            etag=state.etag,
            last_modified=state.last_modified,
            limits=feed.limits_for(source),
        )
    except ContentError as exc:
        return Collected(
            etag=state.etag,
            last_modified=state.last_modified,
            failed=f"source {source.name!r}: {exc}",
        )
    if result.not_modified:
        return Collected(etag=state.etag, last_modified=state.last_modified, not_modified=True)
    try:
        articles = feed.parse_feed(result.body, result.url, source, now)
    except ContentError as exc:
        return Collected(failed=f"source {source.name!r} ({result.url}): {exc}")
    if not state.seen_before:
        # A new source brings only its newest items, not its whole history.
        articles = sorted(articles, key=lambda a: a.published_at, reverse=True)[
            : source.initial_items
        ]
    return Collected(articles=articles, etag=result.etag, last_modified=result.last_modified)


COLLECTORS: dict[str, Collector] = {
    "markdown": _markdown,
    "feed": _feed,
}


def collect(source: SourceConfig, site_url: str, state: SourceState, now: datetime) -> Collected:
    """Run the collector registered for ``source.type``."""
    return COLLECTORS[source.type](source, site_url, state, now)
