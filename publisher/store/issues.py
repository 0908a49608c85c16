"""Issues and the delivery ledger in the store (database I/O).

An issue is unique per ``(digest, period)``: when two schedulers fire at once, the
database decides and the loser gets the winner's issue. Each recipient has one
``deliveries`` row (``queued -> sending -> sent | failed | bounced | skipped``); this
module reads the ledger (counts, failures, when the next retry is due) and closes an
issue once nothing is left to send. Claiming and recording deliveries live in
:mod:`publisher.store.claims`; queueing recipients in :mod:`publisher.store.planning`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.models import Issue
from publisher.store.outbox import Routes, issue_changed
from publisher.store.rows import issue_from_row
from publisher.store.schema import deliveries, issue_articles, issue_totals, issues, settings

DELIVERY_STATES = ("queued", "sending", "sent", "failed", "bounced", "skipped")
# An issue is sending until nothing is left, then sent; paused and cancelled by an operator.
ISSUE_STATES = ("sending", "paused", "sent", "cancelled")
BOUNCED = "bounced"
THROTTLE_KEY = "delivery:throttle"


def with_articles(conn: Connection, row: Any) -> Issue:
    """The :class:`Issue` of an ``issues`` row, with its article ids in order."""
    ids = conn.scalars(
        select(issue_articles.c.article_id)
        .where(issue_articles.c.issue_id == row.id)
        .order_by(issue_articles.c.position)
    )
    return issue_from_row(row, list(ids))


class IssuesMixin:
    """Issues and ledger reads (mixed into :class:`publisher.store.Store`)."""

    engine: Engine
    webhook_routes: Routes

    # -- issues ----------------------------------------------------------------------

    def find_issue(self, digest_id: str, period: str) -> Issue | None:
        """The issue of ``digest_id`` for ``period``, if it exists."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues).where(issues.c.digest_id == digest_id, issues.c.period == period)
            ).first()
            return None if row is None else with_articles(conn, row)

    def create_issue(
        self, digest_id: str, period: str, subject: str, article_ids: Sequence[int], now: datetime
    ) -> tuple[Issue, bool]:
        """Create the issue for ``(digest_id, period)``; if another process won, return theirs."""
        try:
            with self.engine.begin() as conn:
                issue_id = conn.execute(
                    insert(issues).values(
                        digest_id=digest_id,
                        period=period,
                        subject=subject,
                        status="sending",
                        created_at=now,
                    )
                ).inserted_primary_key[0]
                if article_ids:
                    conn.execute(
                        insert(issue_articles),
                        [
                            {"issue_id": issue_id, "article_id": a, "position": i}
                            for i, a in enumerate(article_ids)
                        ],
                    )
                row = conn.execute(select(issues).where(issues.c.id == issue_id)).one()
                return issue_from_row(row, article_ids), True
        except IntegrityError:
            existing = self.find_issue(digest_id, period)
            if existing is None:
                raise
            return existing, False

    def get_issue(self, issue_id: int) -> Issue | None:
        """The issue with this id, if there is one."""
        with self.engine.connect() as conn:
            row = conn.execute(select(issues).where(issues.c.id == issue_id)).first()
            return None if row is None else with_articles(conn, row)

    def open_issues(self, digest_id: str) -> list[Issue]:
        """Issues of ``digest_id`` that still have deliveries to make, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issues)
                .where(issues.c.digest_id == digest_id, issues.c.status == "sending")
                .order_by(issues.c.id)
            ).all()
            return [with_articles(conn, r) for r in rows]

    def issues_to_deliver(self) -> list[Issue]:
        """Every issue, of any digest, that still has deliveries to make, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issues).where(issues.c.status == "sending").order_by(issues.c.id)
            ).all()
            return [with_articles(conn, r) for r in rows]

    def list_issues(self, limit: int = 50) -> list[Issue]:
        """The newest issues of every digest."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(issues).order_by(issues.c.id.desc()).limit(limit)).all()
            return [with_articles(conn, r) for r in rows]

    def last_issue(self, digest_id: str) -> Issue | None:
        """The newest issue of ``digest_id`` (regular or roll-up), if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issues)
                .where(issues.c.digest_id == digest_id)
                .order_by(issues.c.id.desc())
                .limit(1)
            ).first()
            return None if row is None else with_articles(conn, row)

    def issue_cadence(self, issue_id: int) -> str | None:
        """``every`` for a regular issue, the frequency of a roll-up; None if no such issue."""
        with self.engine.connect() as conn:
            return conn.scalar(select(issues.c.cadence).where(issues.c.id == issue_id))

    def finish_issue_if_done(self, issue_id: int, now: datetime | None = None) -> bool:
        """Mark the issue ``sent`` once no delivery is queued or sending; return whether it is.

        A paused issue with deliveries still queued stays paused; one whose last messages
        (those in flight when it was paused) went out is done, and becomes ``sent`` too.
        The call that finishes it queues ``issue.sent`` (``now`` dates it; required when a
        webhook wants the event).
        """
        with self.engine.begin() as conn:
            pending = conn.scalar(
                select(func.count())
                .select_from(deliveries)
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status.in_(("queued", "sending")),
                )
            )
            if pending:
                return False
            # Only a sending (or paused) issue becomes sent: a cancelled one stays cancelled.
            done = conn.execute(
                update(issues)
                .where(issues.c.id == issue_id, issues.c.status.in_(("sending", "paused")))
                .values(status="sent")
            )
            if done.rowcount:  # this call finished it: one ``issue.sent``, however many ask
                issue_changed(conn, self.webhook_routes, "issue.sent", issue_id, now)
            return True

    # -- the ledger ------------------------------------------------------------------

    def requeue_failed(self, issue_id: int, now: datetime) -> int:
        """Queue an issue's ``failed`` deliveries again with a fresh retry budget.

        Bounced ones are left alone (the address does not exist). The issue reopens,
        unless it is paused: then they wait, queued, for the resume.
        """
        with self.engine.begin() as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "failed")
                .values(status="queued", attempts=0, next_attempt_at=now, updated_at=now)
            )
            count = int(result.rowcount or 0)
            if count:
                conn.execute(
                    update(issues)
                    .where(issues.c.id == issue_id, issues.c.status != "paused")
                    .values(status="sending")
                )
            return count

    def retry_queue_size(self) -> int:
        """Queued deliveries of open issues that already failed at least once (retries)."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(deliveries.join(issues, issues.c.id == deliveries.c.issue_id))
                    .where(
                        issues.c.status == "sending",
                        deliveries.c.status == "queued",
                        deliveries.c.attempts > 0,
                    )
                )
                or 0
            )

    def next_due_at(self) -> datetime | None:
        """When the earliest queued delivery of any open issue becomes due."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.min(deliveries.c.next_attempt_at))
                .join(issues, issues.c.id == deliveries.c.issue_id)
                .where(issues.c.status == "sending", deliveries.c.status == "queued")
            )

    def next_retry_at(self, issue_id: int) -> datetime | None:
        """When the earliest queued delivery of the issue becomes due."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.min(deliveries.c.next_attempt_at)).where(
                    deliveries.c.issue_id == issue_id, deliveries.c.status == "queued"
                )
            )

    def sent_since(self, issue_id: int, since: datetime) -> tuple[int, datetime | None]:
        """How many deliveries of the issue were recorded sent since ``since``, and the first."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(func.count(), func.min(deliveries.c.sent_at)).where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status == "sent",
                    deliveries.c.sent_at >= since,
                )
            ).one()
            return int(row[0] or 0), row[1]

    def delivery_counts(self, issue_id: int) -> dict[str, int]:
        """Deliveries of an issue by status (every status present, zero when none)."""
        counts = dict.fromkeys(DELIVERY_STATES, 0)
        with self.engine.connect() as conn:
            for status, count in conn.execute(
                select(deliveries.c.status, func.count())
                .where(deliveries.c.issue_id == issue_id)
                .group_by(deliveries.c.status)
            ):
                counts[status] = count
            # What ``publisher purge`` rolled up before deleting the rows of an old issue.
            rolled = conn.execute(
                select(issue_totals).where(issue_totals.c.issue_id == issue_id)
            ).first()
        if rolled is not None:
            for status in ("sent", "failed", "bounced", "skipped"):
                counts[status] += getattr(rolled, status)
        return counts

    def failures(self, issue_id: int, limit: int = 5) -> list[tuple[str, int]]:
        """The most common last replies of failed (or bounced) deliveries of an issue."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.last_reply, func.count().label("n"))
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.status.in_(("failed", BOUNCED)),
                )
                .group_by(deliveries.c.last_reply)
                .order_by(func.count().desc())
                .limit(limit)
            )
            return [(r.last_reply or "", r.n) for r in rows]

    def set_throttle(self, until: datetime, reply: str, worker: str) -> None:
        """Record that the relay asked us to slow down (421 / 4.7.x), for ``status``."""
        value = json.dumps({"until": until.isoformat(), "reply": reply[:300], "worker": worker})
        with self.engine.begin() as conn:
            conn.execute(settings.delete().where(settings.c.key == THROTTLE_KEY))
            conn.execute(insert(settings).values(key=THROTTLE_KEY, value=value))

    def throttle(self) -> dict[str, Any] | None:
        """The last slow-down the relay asked for: ``until`` (datetime), ``reply``, ``worker``."""
        with self.engine.connect() as conn:
            value = conn.scalar(select(settings.c.value).where(settings.c.key == THROTTLE_KEY))
        if not value:
            return None
        data = json.loads(value)
        data["until"] = datetime.fromisoformat(data["until"])
        return data
