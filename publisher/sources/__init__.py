"""Collectors of articles (I/O edge): a registry from ``[[sources]] type`` to a collector.

A collector takes its SourceConfig and the site URL and returns the articles it found plus
one error line per item it had to skip, so one broken file never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable

from publisher.config import SourceConfig
from publisher.models import Article
from publisher.sources import markdown

Collector = Callable[[SourceConfig, str], tuple[list[Article], list[str]]]

COLLECTORS: dict[str, Collector] = {
    "markdown": markdown.collect,
}


def collect(source: SourceConfig, site_url: str) -> tuple[list[Article], list[str]]:
    """Run the collector registered for ``source.type``."""
    return COLLECTORS[source.type](source, site_url)
