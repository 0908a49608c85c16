"""Cadence roll-ups in the store (database I/O): subscription frequencies and their issues.

A subscriber who chose a weekly or monthly cadence gets a roll-up of the digest's regular
issues instead of each one. Their subscription keeps a cursor (the newest regular issue
already rolled up to them) and the cadence period already done; subscribers sharing a
cursor share one roll-up issue, created and queued in one transaction that also moves
their cursor, with the unique ``(digest, period)`` deciding between racing processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.models import Issue
from publisher.store.rows import issue_from_row
from publisher.store.schema import deliveries, issue_articles, issues, subscribers, subscriptions
from publisher.store.subscribers import ACTIVE


class RollupsMixin:
    """Frequencies and roll-up issues (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def set_frequency(
        self, subscriber_id: int, done: dict[str, str | None], frequency: str
    ) -> int:
        """Set the cadence of a subscriber's subscriptions; return how many changed.

        ``done`` maps each digest id to the cadence period already behind them (the one
        whose closing fire has passed), so their first roll-up is at the next close.
        Moving to a new frequency starts the cursor at the digest's newest regular issue:
        the next roll-up holds what comes after it, never a backlog.
        """
        changed = 0
        with self.engine.begin() as conn:
            for digest_id, cadence in done.items():
                key = and_(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.digest_id == digest_id,
                )
                current = conn.scalar(select(subscriptions.c.frequency).where(key))
                if current is None or current == frequency:
                    continue
                latest = conn.scalar(
                    select(func.max(issues.c.id)).where(
                        issues.c.digest_id == digest_id, issues.c.cadence == "every"
                    )
                )
                conn.execute(
                    update(subscriptions)
                    .where(key)
                    .values(frequency=frequency, cursor_issue_id=latest or 0, cadence_key=cadence)
                )
                changed += 1
        return changed

    def subscription_frequencies(self, subscriber_id: int) -> dict[str, str]:
        """``{digest_id: frequency}`` of one subscriber."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(subscriptions.c.digest_id, subscriptions.c.frequency).where(
                    subscriptions.c.subscriber_id == subscriber_id
                )
            )
            return {r.digest_id: r.frequency for r in rows}

    def rollup_groups(self, digest_id: str, frequency: str, cadence: str) -> dict[int, list[int]]:
        """Active subscribers of ``frequency`` not yet rolled up for ``cadence``, by cursor."""
        query = (
            select(subscriptions.c.subscriber_id, subscriptions.c.cursor_issue_id)
            .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
            .where(
                subscriptions.c.digest_id == digest_id,
                subscriptions.c.frequency == frequency,
                subscribers.c.status == ACTIVE,
                or_(subscriptions.c.cadence_key.is_(None), subscriptions.c.cadence_key < cadence),
            )
            .order_by(subscriptions.c.subscriber_id)
        )
        groups: dict[int, list[int]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                groups.setdefault(row.cursor_issue_id or 0, []).append(row.subscriber_id)
        return groups

    def regular_articles_since(self, digest_id: str, after_issue_id: int) -> tuple[list[int], int]:
        """Article ids of the digest's regular issues after ``after_issue_id`` (newest issue
        first, each in its own order), and the newest such issue id (``after`` if none)."""
        query = (
            select(issue_articles.c.article_id, issues.c.id)
            .join(issues, issues.c.id == issue_articles.c.issue_id)
            .where(
                issues.c.digest_id == digest_id,
                issues.c.cadence == "every",
                issues.c.status != "cancelled",
                issues.c.id > after_issue_id,
            )
            .order_by(issues.c.id.desc(), issue_articles.c.position)
        )
        ids: list[int] = []
        upto = after_issue_id
        with self.engine.connect() as conn:
            for article_id, issue_id in conn.execute(query):
                upto = max(upto, issue_id)
                if article_id not in ids:
                    ids.append(article_id)
        return ids, upto

    def create_rollup(
        self,
        digest_id: str,
        frequency: str,
        cadence: str,
        period: str,
        subject: str,
        cursor: int,
        upto: int,
        article_ids: Sequence[int],
        now: datetime,
        due_at: datetime | None = None,
    ) -> tuple[Issue | None, int]:
        """Create one roll-up issue and queue it for the subscribers at ``cursor``; one
        transaction that also moves their cursor to ``upto`` and marks ``cadence`` done.

        With no ``article_ids`` the cadence period is only marked done (no new articles,
        no issue). If another process made this roll-up first, nothing is written and
        ``(None, 0)`` is returned: the unique ``(digest, period)`` decides.
        """
        due = and_(
            subscriptions.c.digest_id == digest_id,
            subscriptions.c.frequency == frequency,
            func.coalesce(subscriptions.c.cursor_issue_id, 0) == cursor,
            or_(subscriptions.c.cadence_key.is_(None), subscriptions.c.cadence_key < cadence),
        )
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(subscriptions.c.id, subscriptions.c.subscriber_id)
                    .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
                    .where(due, subscribers.c.status == ACTIVE)
                    .with_for_update(of=subscriptions)
                ).all()
                if not rows:
                    return None, 0
                conn.execute(
                    update(subscriptions)
                    .where(subscriptions.c.id.in_([r.id for r in rows]))
                    .values(cursor_issue_id=upto, cadence_key=cadence)
                )
                if not article_ids:
                    return None, 0
                issue_id = conn.execute(
                    insert(issues).values(
                        digest_id=digest_id,
                        period=period,
                        subject=subject,
                        status="sending",
                        cadence=frequency,
                        created_at=now,
                    )
                ).inserted_primary_key[0]
                conn.execute(
                    insert(issue_articles),
                    [
                        {"issue_id": issue_id, "article_id": a, "position": i}
                        for i, a in enumerate(article_ids)
                    ],
                )
                conn.execute(
                    insert(deliveries),
                    [
                        {
                            "issue_id": issue_id,
                            "subscriber_id": r.subscriber_id,
                            "status": "queued",
                            "attempts": 0,
                            "next_attempt_at": due_at or now,
                            "updated_at": now,
                        }
                        for r in rows
                    ],
                )
                row = conn.execute(select(issues).where(issues.c.id == issue_id)).one()
                return issue_from_row(row, article_ids), len(rows)
        except IntegrityError:
            return None, 0
