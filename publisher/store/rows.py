"""Stored rows to models (pure, no I/O): JSON list columns, articles and issues."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from publisher.models import Article, Citation, Issue


def json_list(value: str | None) -> list[Any]:
    """The list held by a JSON text column (tags, citations, digests); empty when NULL."""
    return json.loads(value) if value else []


def article_from_row(row: Any) -> Article:
    """The :class:`Article` of an ``articles`` row."""
    return Article(
        id=row.id,
        source=row.source,
        guid=row.guid,
        feed_id=row.feed_id,
        title=row.title,
        url=row.url,
        author=row.author,
        summary=row.summary,
        content_html=row.content_html,
        tags=tuple(json_list(row.tags)),
        image=row.image,
        canonical_url=row.canonical_url,
        citations=tuple(Citation(**c) for c in json_list(row.citations)),
        content_hash=row.content_hash,
        published_at=row.published_at,
        updated_at=row.updated_at,
    )


def issue_from_row(row: Any, article_ids: Sequence[int] = ()) -> Issue:
    """The :class:`Issue` of an ``issues`` row, holding ``article_ids`` in order."""
    return Issue(
        id=row.id,
        digest_id=row.digest_id,
        period=row.period,
        subject=row.subject,
        created_at=row.created_at,
        status=row.status,
        article_ids=tuple(article_ids),
    )
