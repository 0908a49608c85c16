"""Pages of issues and articles (store reads), newest first, by opaque cursor.

The same keyset paging as the subscriber directory (:mod:`publisher.services.directory`,
whose cursor format these pages share): never OFFSET, so a deep page is as cheap as the
first and rows arriving meanwhile shift nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from publisher.app import App
from publisher.errors import PublisherError
from publisher.models import Article, Issue
from publisher.services.directory import MAX_LIMIT, decode_cursor, encode_cursor
from publisher.store import ISSUE_STATES

T = TypeVar("T", Issue, Article)


@dataclass(frozen=True)
class Listing(Generic[T]):
    """One page and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise PublisherError(f"limit must be 1 to {MAX_LIMIT}, not {limit}")


def list_issues(
    app: App,
    *,
    digest: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Listing[Issue]:
    """Issues newest first, of one digest and one status when given."""
    if digest is not None:
        app.config.digest(digest)
    if status is not None and status not in ISSUE_STATES:
        raise PublisherError(f"unknown status {status!r}: choose one of {', '.join(ISSUE_STATES)}")
    _check_limit(limit)
    before = None if after is None else decode_cursor(after)
    rows = app.store.page_issues(digest_id=digest, status=status, before_id=before, limit=limit + 1)
    items = rows[:limit]
    return Listing(items, encode_cursor(items[-1].id) if len(rows) > limit else None)


def list_articles(
    app: App,
    *,
    source: str | None = None,
    tag: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Listing[Article]:
    """Stored articles, the most recently collected first, of one source and one tag
    when given."""
    _check_limit(limit)
    before = None if after is None else decode_cursor(after)
    rows = app.store.page_articles(source=source, tag=tag, before_id=before, limit=limit + 1)
    items = rows[:limit]
    last = items[-1].id if items else None
    return Listing(items, encode_cursor(last) if len(rows) > limit and last else None)
