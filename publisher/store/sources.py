"""Sources and the feed index in the store (database I/O): source health, feed-writer state.

Each source keeps one ``source_state`` row: its last success or error, how many runs in a
row failed, and the HTTP validators (ETag, Last-Modified) for the next conditional GET.
The feed writer plans every feed from :meth:`SourcesMixin.feed_index` (key columns, no
bodies) and remembers what it built in the ``feeds_state`` setting.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, insert, select, update

from publisher.store.rows import json_list
from publisher.store.schema import articles, settings, source_state

FEEDS_STATE = "feeds_state"


class FeedIndexRow(NamedTuple):
    """An article's columns that decide which feeds hold it and whether they changed."""

    id: int
    published_at: datetime
    updated_at: datetime
    content_hash: str
    tags: tuple[str, ...]
    author: str


class SourcesMixin:
    """Source health and the feed writer's inputs (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def feed_index(self) -> list[FeedIndexRow]:
        """Every article's feed-relevant key columns (no bodies), newest first.

        The feed writer plans every feed from this one cheap query and loads full
        articles only for the feeds whose inputs changed.
        """
        query = select(
            articles.c.id,
            articles.c.published_at,
            articles.c.updated_at,
            articles.c.content_hash,
            articles.c.tags,
            articles.c.author,
        ).order_by(articles.c.published_at.desc(), articles.c.id.desc())
        tag_lists: dict[str, tuple[str, ...]] = {}  # the same tag lists recur: parse once
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for r in rows:
            tags = tag_lists.get(r.tags)
            if tags is None:
                tags = tag_lists[r.tags] = tuple(json_list(r.tags))
            out.append(
                FeedIndexRow(r.id, r.published_at, r.updated_at, r.content_hash, tags, r.author)
            )
        return out

    def feeds_state(self) -> dict[str, Any]:
        """What the feed writer remembered from its last build (``{}`` at first)."""
        with self.engine.connect() as conn:
            value = conn.scalar(select(settings.c.value).where(settings.c.key == FEEDS_STATE))
        return json.loads(value) if value else {}

    def save_feeds_state(self, state: dict[str, Any]) -> None:
        """Replace the feed writer's remembered state."""
        value = json.dumps(state, sort_keys=True)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(settings).where(settings.c.key == FEEDS_STATE).values(value=value)
            ).rowcount
            if not done:
                conn.execute(insert(settings).values(key=FEEDS_STATE, value=value))

    def record_source_run(
        self,
        source: str,
        now: datetime,
        error: str | None,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> int:
        """Remember a source's last success or failure and its validators.

        Returns the number of consecutive failed runs (0 after a success).
        """
        failures = 0
        with self.engine.begin() as conn:
            row = conn.execute(select(source_state).where(source_state.c.source == source)).first()
            if error is None:
                values: dict[str, Any] = {
                    "last_success_at": now,
                    "last_error": None,
                    "consecutive_failures": 0,
                    "etag": etag,
                    "last_modified": last_modified,
                }
            else:
                failures = (row.consecutive_failures if row else 0) + 1
                values = {"last_error": error, "consecutive_failures": failures}
            if row is None:
                conn.execute(insert(source_state).values(source=source, updated_at=now, **values))
            else:
                conn.execute(
                    update(source_state)
                    .where(source_state.c.source == source)
                    .values(updated_at=now, **values)
                )
        return failures

    def source_states(self) -> list[dict[str, Any]]:
        """Every source's health row."""
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(select(source_state).order_by(source_state.c.source))
            ]
