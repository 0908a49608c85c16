"""Pausing and resuming issues in the store (database I/O).

A paused issue (status ``paused``) keeps its queued deliveries: nothing is skipped, no
retry budget is spent. It hands out no claims (:meth:`~publisher.store.claims.ClaimsMixin
.claim_batch` claims only for a ``sending`` issue), and ``open_issues``,
``issues_to_deliver`` and ``next_due_at`` leave it out, so ``send``, ``run`` and every
``worker`` pass it by. A sender busy with it when it is paused notices within a second
(:mod:`publisher.deliver.engine`), finishes the messages in flight and puts the rest of its
batch back in the queue. Resuming makes it ``sending`` again; the next poll sends the rest.

Each change is one transaction that reads the issue's status under a row lock first, so a
pause racing a cancel, a second pause or a finishing sender has one outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from publisher.models import Issue
from publisher.store.issues import with_articles
from publisher.store.outbox import Routes, issue_changed
from publisher.store.schema import deliveries, issue_autopauses, issues

PAUSED = "paused"


@dataclass(frozen=True)
class PauseChange:
    """What a pause or resume found: the status before (None: no such issue), whether it
    changed, and how many deliveries were queued and in flight (``sending``) then."""

    before: str | None
    changed: bool = False
    queued: int = 0
    sending: int = 0


def _left(conn: Connection, issue_id: int) -> tuple[int, int]:
    counts = dict(
        conn.execute(
            select(deliveries.c.status, func.count())
            .where(
                deliveries.c.issue_id == issue_id, deliveries.c.status.in_(("queued", "sending"))
            )
            .group_by(deliveries.c.status)
        ).all()
    )
    return int(counts.get("queued", 0)), int(counts.get("sending", 0))


def _locked_status(conn: Connection, issue_id: int) -> str | None:
    return conn.scalar(select(issues.c.status).where(issues.c.id == issue_id).with_for_update())


class PausesMixin:
    """Pause and resume (mixed into :class:`publisher.store.Store`)."""

    engine: Engine
    webhook_routes: Routes

    def pause_issue(
        self, issue_id: int, now: datetime | None = None, reason: dict[str, Any] | None = None
    ) -> PauseChange:
        """Pause a ``sending`` issue that still has deliveries queued or in flight.

        Any other issue is left as it is; the returned ``before`` says why (``paused``,
        ``sent``, ``cancelled``, or ``sending`` with nothing left). A pause queues
        ``issue.paused`` (dated ``now``, required when a webhook wants it). An automatic
        pause passes ``reason`` (the columns of ``issue_autopauses`` but ``issue_id`` and
        the dates): it is recorded in the same transaction and sent in the webhook's data.
        """
        with self.engine.begin() as conn:
            before = _locked_status(conn, issue_id)
            if before is None:
                return PauseChange(None)
            queued, sending = _left(conn, issue_id)
            changed = before == "sending" and bool(queued or sending)
            if changed:
                conn.execute(update(issues).where(issues.c.id == issue_id).values(status=PAUSED))
                extra: dict[str, Any] = {"reason": None}
                if reason is not None:
                    conn.execute(
                        delete(issue_autopauses).where(issue_autopauses.c.issue_id == issue_id)
                    )
                    conn.execute(
                        insert(issue_autopauses).values(issue_id=issue_id, paused_at=now, **reason)
                    )
                    extra = {"reason": reason["reason"], "auto": dict(reason)}
                issue_changed(conn, self.webhook_routes, "issue.paused", issue_id, now,
                              queued=queued, sending=sending, **extra)  # fmt: skip
            return PauseChange(before, changed, queued, sending)

    def resume_issue(self, issue_id: int, now: datetime | None = None) -> PauseChange:
        """Make a paused issue ``sending`` again (``sent`` if nothing is left to send, which
        queues ``issue.sent``, dated ``now``).

        An issue that is not paused is left as it is.
        """
        with self.engine.begin() as conn:
            before = _locked_status(conn, issue_id)
            if before is None:
                return PauseChange(None)
            queued, sending = _left(conn, issue_id)
            if before != PAUSED:
                return PauseChange(before, False, queued, sending)
            # Everything went out while it was paused (the messages in flight): it is done.
            after = "sending" if queued or sending else "sent"
            conn.execute(update(issues).where(issues.c.id == issue_id).values(status=after))
            # An auto-pause record stays (its rates are the bar a re-pause must pass), resumed.
            conn.execute(update(issue_autopauses).where(issue_autopauses.c.issue_id == issue_id,
                         issue_autopauses.c.resumed_at.is_(None)).values(resumed_at=now))  # fmt: skip
            if after == "sent":
                issue_changed(conn, self.webhook_routes, "issue.sent", issue_id, now)
            return PauseChange(before, True, queued, sending)

    def issue_status(self, issue_id: int) -> str | None:
        """The issue's status (``sending``, ``paused``, ``sent``, ``cancelled``), or None."""
        with self.engine.connect() as conn:
            return conn.scalar(select(issues.c.status).where(issues.c.id == issue_id))

    def paused_issues(self, digest_id: str | None = None) -> list[tuple[Issue, int]]:
        """Paused issues (of ``digest_id``, or of every digest), oldest first, each with
        how many of its deliveries are queued."""
        query = select(issues).where(issues.c.status == PAUSED).order_by(issues.c.id)
        if digest_id is not None:
            query = query.where(issues.c.digest_id == digest_id)
        with self.engine.connect() as conn:
            found = []
            for row in conn.execute(query).all():
                queued = conn.scalar(
                    select(func.count()).where(
                        deliveries.c.issue_id == row.id, deliveries.c.status == "queued"
                    )
                )
                found.append((with_articles(conn, row), int(queued or 0)))
            return found
