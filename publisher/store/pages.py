"""Keyset pages of issues and articles, and per-digest totals (database reads).

For the HTTP API's lists: each page is ``id < :before`` newest first, read along the
primary key, so any page costs what the first one costs. :class:`PagesMixin` is mixed into
:class:`publisher.store.Store`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from publisher.models import Article, Issue
from publisher.store.issues import DELIVERY_STATES, with_articles
from publisher.store.rows import article_from_row
from publisher.store.schema import articles, deliveries, issues, subscribers, subscriptions


def _aware(value: datetime | None) -> datetime | None:
    """An aggregate's datetime (min/max lose the column type on SQLite) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


class PagesMixin:
    """Pages of issues and articles, and a digest's totals; needs the Store's ``engine``."""

    engine: Engine

    def page_issues(
        self,
        *,
        digest_id: str | None,
        status: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[Issue]:
        """Up to ``limit`` issues (of one digest, of one status) below ``before_id``,
        newest first."""
        query = select(issues)
        if digest_id is not None:
            query = query.where(issues.c.digest_id == digest_id)
        if status is not None:
            query = query.where(issues.c.status == status)
        if before_id is not None:
            query = query.where(issues.c.id < before_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(issues.c.id.desc()).limit(limit)).all()
            return [with_articles(conn, r) for r in rows]

    def page_articles(
        self, *, source: str | None, tag: str | None, before_id: int | None, limit: int
    ) -> list[Article]:
        """Up to ``limit`` articles (of one source, carrying ``tag``) below ``before_id``,
        newest stored first."""
        query = select(articles)
        if source is not None:
            query = query.where(articles.c.source == source)
        if tag is not None:
            query = query.where(articles.c.tags.contains(json.dumps(tag), autoescape=True))
        if before_id is not None:
            query = query.where(articles.c.id < before_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(articles.c.id.desc()).limit(limit)).all()
        return [article_from_row(r) for r in rows]

    def sent_span(self, issue_id: int) -> tuple[datetime | None, datetime | None]:
        """When the first and the last message of the issue were recorded sent."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(func.min(deliveries.c.sent_at), func.max(deliveries.c.sent_at)).where(
                    deliveries.c.issue_id == issue_id, deliveries.c.status == "sent"
                )
            ).one()
        return _aware(row[0]), _aware(row[1])

    def digest_totals(self, digest_id: str) -> dict[str, Any]:
        """A digest's subscribers by status, its issues by status and its deliveries by
        status over every issue (every known status present, zero when none)."""
        with self.engine.connect() as conn:
            people = dict(
                conn.execute(
                    select(subscribers.c.status, func.count())
                    .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
                    .where(subscriptions.c.digest_id == digest_id)
                    .group_by(subscribers.c.status)
                ).all()
            )
            by_issue = dict(
                conn.execute(
                    select(issues.c.status, func.count())
                    .where(issues.c.digest_id == digest_id)
                    .group_by(issues.c.status)
                ).all()
            )
            ledger = dict.fromkeys(DELIVERY_STATES, 0)
            for status, count in conn.execute(
                select(deliveries.c.status, func.count())
                .join(issues, issues.c.id == deliveries.c.issue_id)
                .where(issues.c.digest_id == digest_id)
                .group_by(deliveries.c.status)
            ):
                ledger[status] = count
        return {"subscribers": people, "issues": by_issue, "deliveries": ledger}
