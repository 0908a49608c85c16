"""Articles in the store (database I/O): upsert by ``(source, guid)``, and the reads.

An article is identified by ``(source, guid)``; a changed body is an update of the same
row, never a second article. Its feed id is fixed when it is first seen
(:func:`feed_id_for`), so feed readers keep recognising it whatever changes later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.models import Article
from publisher.store.rows import article_from_row, json_list
from publisher.store.schema import articles, issue_articles, issues


def feed_id_for(article: Article, site_host: str, first_seen: datetime) -> str:
    """The permanent feed id: the canonical URL, else a ``tag:`` URI (RFC 4151)."""
    if article.canonical_url:
        return article.canonical_url
    return f"tag:{site_host},{first_seen:%Y-%m-%d}:{article.source}/{article.guid}"


class ArticlesMixin:
    """Storing and reading articles (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def upsert_article(self, article: Article, now: datetime, site_host: str) -> str:
        """Insert or update one article; return ``new``, ``updated`` or ``unchanged``."""
        key = and_(articles.c.source == article.source, articles.c.guid == article.guid)
        values = {
            "title": article.title,
            "url": article.url,
            "author": article.author,
            "summary": article.summary,
            "content_html": article.content_html,
            "tags": json.dumps(list(article.tags)),
            "image": article.image,
            "canonical_url": article.canonical_url,
            "citations": json.dumps([c.__dict__ for c in article.citations]),
            "content_hash": article.content_hash,
            "published_at": article.published_at,
        }
        with self.engine.begin() as conn:
            row = conn.execute(
                select(articles.c.id, articles.c.content_hash, articles.c.updated_at).where(key)
            ).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(articles).values(
                                source=article.source,
                                guid=article.guid,
                                feed_id=feed_id_for(article, site_host, now),
                                updated_at=article.updated_at,
                                first_seen_at=now,
                                **values,
                            )
                        )
                    return "new"
                except IntegrityError:
                    # Another process (a second daemon on the same PostgreSQL) stored it
                    # between our look and our insert: theirs stands, compare with it.
                    row = conn.execute(
                        select(articles.c.id, articles.c.content_hash, articles.c.updated_at)
                        .where(key)
                    ).one()
            if row.content_hash == article.content_hash:
                return "unchanged"
            # An edit without an explicit `updated` date is dated by when we saw it.
            updated_at = article.updated_at if article.updated_at > row.updated_at else now
            conn.execute(
                update(articles)
                .where(articles.c.id == row.id)
                .values(updated_at=updated_at, **values)
            )
            return "updated"

    def recent_articles(self, limit: int) -> list[Article]:
        """The newest ``limit`` articles, newest first."""
        query = select(articles).order_by(articles.c.published_at.desc(), articles.c.id.desc())
        with self.engine.connect() as conn:
            return [article_from_row(r) for r in conn.execute(query.limit(limit))]

    def articles_by_id(self, ids: Sequence[int]) -> list[Article]:
        """Articles with these ids, in the order given."""
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = {
                r.id: article_from_row(r)
                for r in conn.execute(select(articles).where(articles.c.id.in_(ids)))
            }
        return [rows[i] for i in ids if i in rows]

    def unissued_articles(self, digest_id: str) -> list[Article]:
        """Articles that no issue of ``digest_id`` holds yet, newest first."""
        issued = (
            select(issue_articles.c.article_id)
            .join(issues, issues.c.id == issue_articles.c.issue_id)
            # A cancelled issue whose articles were released no longer holds them.
            .where(issues.c.digest_id == digest_id, issues.c.released_at.is_(None))
        )
        query = (
            select(articles)
            .where(articles.c.id.not_in(issued))
            .order_by(articles.c.published_at.desc(), articles.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [article_from_row(r) for r in conn.execute(query)]

    def all_tags(self) -> list[str]:
        """Every tag used by a stored article, sorted."""
        tags: set[str] = set()
        with self.engine.connect() as conn:
            for value in conn.scalars(select(articles.c.tags)):
                tags.update(json_list(value))
        return sorted(tags)

    def articles_with_tag(self, tag: str, limit: int) -> list[Article]:
        """The newest ``limit`` articles carrying ``tag``, newest first."""
        needle = json.dumps(tag)
        query = (
            select(articles)
            .where(articles.c.tags.contains(needle, autoescape=True))
            .order_by(articles.c.published_at.desc(), articles.c.id.desc())
        )
        out: list[Article] = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                article = article_from_row(row)
                if tag in article.tags:
                    out.append(article)
                    if len(out) >= limit:
                        break
        return out

    def count_articles(self) -> int:
        """How many articles are stored."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(articles)) or 0)
