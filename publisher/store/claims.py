"""Claims on deliveries (database I/O): claim, take over, fence, record, release, replay.

A worker claims a batch of due deliveries of one issue: their status becomes ``sending``,
``worker_id`` names the worker (a ``workers`` row) and ``lease_until`` says until when the
claim stands if nobody can tell whether the worker still lives. Which claims may be taken
over is decided by the caller, who knows how to judge liveness (:mod:`publisher.deliver.liveness`):

- ``takeover``: workers known to be gone; their ``sending`` rows are claimed at once;
- ``lease_decides``: workers whose liveness cannot be known; their rows are claimed once
  the lease expired. Rows of no worker (claimed before migration 0006) are treated so too.

Every write of a result is *fenced*: it changes a row only while it is still ``sending``,
held by the writer and at the attempt the writer claimed. A worker resumed after its claims
were taken over therefore records nothing over the new holder's work; the ids it could not
record are returned so it can report them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from publisher.models import Recipient, SendOutcome
from publisher.store.events import record_many
from publisher.store.outbox import Routes, emit, subscriber_data
from publisher.store.schema import deliveries, issues, subscribers

ACTIVE = "active"
BOUNCED = "bounced"


def _fence(owner: int | None, attempt: int) -> Any:
    """The row is still ours: sending, held by ``owner``, at the attempt we claimed."""
    held = deliveries.c.worker_id.is_(None) if owner is None else deliveries.c.worker_id == owner
    return and_(deliveries.c.status == "sending", held, deliveries.c.attempts == attempt)


class ClaimsMixin:
    """The claim/record half of :class:`publisher.store.Store` (needs ``self.engine``)."""

    engine: Any
    webhook_routes: Routes

    def claim_batch(
        self,
        issue_id: int,
        worker: str,
        now: datetime,
        limit: int,
        lease_seconds: int,
        *,
        owner: int | None = None,
        takeover: Collection[int] = (),
        lease_decides: Collection[int] = (),
    ) -> list[Recipient]:
        """Claim up to ``limit`` due deliveries of one issue for worker ``owner``.

        Due means queued with ``next_attempt_at <= now``, or ``sending`` and held by a
        worker in ``takeover`` (gone), or held by one in ``lease_decides`` (or by nobody
        known) with an expired lease. Taken-over rows come first and are marked
        ``recovered`` (they may have been on the wire). Deliveries to subscribers who are
        no longer active are marked ``skipped`` here, so an unsubscribe stops queued mail.
        Only a ``sending`` issue hands out claims: a paused or cancelled one gets nothing.
        ``worker`` is a label for people (``host:pid/thread``) kept in ``claimed_by``.
        """
        stale = and_(
            deliveries.c.lease_until < now,
            or_(deliveries.c.worker_id.is_(None), deliveries.c.worker_id.in_(list(lease_decides))),
        )
        if takeover:
            stale = or_(deliveries.c.worker_id.in_(list(takeover)), stale)
        columns = (
            deliveries.c.id,
            deliveries.c.subscriber_id,
            deliveries.c.attempts,
            deliveries.c.status,
            subscribers.c.email,
            subscribers.c.name,
            subscribers.c.status.label("subscriber_status"),
        )

        def query(*where: Any) -> Any:
            return (
                select(*columns)
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(deliveries.c.issue_id == issue_id, *where)
                # Index order of ix_deliveries_claim: a range read that stops at the limit.
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                .with_for_update(skip_locked=True, of=deliveries)
            )

        queries = [
            query(deliveries.c.status == "sending", stale),
            query(deliveries.c.status == "queued", deliveries.c.next_attempt_at <= now),
        ]
        active: list[Any] = []
        rows: list[Any] = [None]
        digest_id = ""
        # A batch of nothing but departed subscribers is skipped whole; claim on after it,
        # so that an empty result always means "nothing is due".
        while rows and not active:
            rows, active, digest_id = self._claim_once(
                issue_id, queries, limit, worker, owner, now, lease_seconds
            )
        return [
            Recipient(
                delivery_id=r.id,
                issue_id=issue_id,
                subscriber_id=r.subscriber_id,
                email=r.email,
                name=r.name,
                digest_id=digest_id,
                attempts=r.attempts + 1,
                recovered=r.status == "sending",
            )
            for r in active
        ]

    def _claim_once(
        self,
        issue_id: int,
        queries: list[Any],
        limit: int,
        worker: str,
        owner: int | None,
        now: datetime,
        lease_seconds: int,
    ) -> tuple[list[Any], list[Any], str]:
        with self.engine.begin() as conn:
            issue = conn.execute(
                select(issues.c.status, issues.c.digest_id).where(issues.c.id == issue_id)
            ).first()
            if issue is None or issue.status != "sending":
                # Paused or cancelled since the caller chose it: hand out nothing more.
                return [], [], ""
            rows: list[Any] = []
            for query in queries:
                if len(rows) < limit:
                    rows.extend(conn.execute(query.limit(limit - len(rows))).all())
            inactive = [r.id for r in rows if r.subscriber_status != ACTIVE]
            active = [r for r in rows if r.subscriber_status == ACTIVE]
            if inactive:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(inactive))
                    .values(
                        status="skipped",
                        last_reply="subscriber is no longer active",
                        lease_until=None,
                        updated_at=now,
                    )
                )
            if active:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([r.id for r in active]))
                    .values(
                        status="sending",
                        attempts=deliveries.c.attempts + 1,
                        lease_until=now + timedelta(seconds=lease_seconds),
                        claimed_by=worker,
                        worker_id=owner,
                        updated_at=now,
                    )
                )
        return rows, active, issue.digest_id

    def release_claims(
        self, delivery_ids: Sequence[int], now: datetime, *, owner: int | None = None
    ) -> int:
        """Put claimed but unsent deliveries back in the queue (a graceful stop or a pause).

        The attempt the claim counted is given back, so a stop costs no retry budget.
        Only rows ``owner`` still holds are touched.
        """
        if not delivery_ids:
            return 0
        held = deliveries.c.worker_id.is_(None) if owner is None else deliveries.c.worker_id == owner
        with self.engine.begin() as conn:
            return _release(conn, deliveries.c.id.in_(list(delivery_ids)), held, now=now)

    def verify_claims(self, delivery_ids: Sequence[int], owner: int | None) -> set[int]:
        """The ids among ``delivery_ids`` that ``owner`` still holds (status ``sending``)."""
        if not delivery_ids:
            return set()
        held = deliveries.c.worker_id.is_(None) if owner is None else deliveries.c.worker_id == owner
        with self.engine.connect() as conn:
            return set(
                conn.scalars(
                    select(deliveries.c.id).where(
                        deliveries.c.id.in_(list(delivery_ids)),
                        deliveries.c.status == "sending",
                        held,
                    )
                )
            )

    def record_outcomes(
        self,
        outcomes: Sequence[tuple[SendOutcome, int]],
        now: datetime,
        *,
        max_attempts: int,
        retry_at: Callable[[int, int], datetime],
        owner: int | None = None,
    ) -> set[int]:
        """Record a batch of results in one transaction; return the ids not recorded.

        ``outcomes`` pairs each result with the attempt number it was; ``retry_at(attempt,
        delivery_id)`` gives the next attempt time of a temporary failure. A result is
        written only while ``owner`` still holds the row at that attempt (fencing); the
        ids of the others (claims taken over meanwhile) are returned.
        """
        if not outcomes:
            return set()
        recorded: set[int] = set()
        with self.engine.begin() as conn:
            by_attempt: dict[int, list[int]] = {}
            for outcome, attempt in outcomes:
                if outcome.ok:
                    by_attempt.setdefault(attempt, []).append(outcome.delivery_id)
            for attempt, ids in by_attempt.items():
                recorded.update(
                    conn.scalars(
                        update(deliveries)
                        .where(deliveries.c.id.in_(ids), _fence(owner, attempt))
                        .values(
                            status="sent",
                            sent_at=now,
                            lease_until=None,
                            last_reply="250 ok",
                            updated_at=now,
                        )
                        .returning(deliveries.c.id)
                    )
                )
            bounced: list[int] = []
            for outcome, attempt in outcomes:
                if outcome.ok:
                    continue
                final = outcome.permanent or attempt >= max_attempts
                values: dict[str, Any] = {
                    "status": (BOUNCED if outcome.bounce else "failed") if final else "queued",
                    "last_reply": outcome.reply[:1000],
                    "lease_until": None,
                    "updated_at": now,
                }
                if not final:
                    values["next_attempt_at"] = retry_at(attempt, outcome.delivery_id)
                done = conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == outcome.delivery_id, _fence(owner, attempt))
                    .values(**values)
                )
                if done.rowcount:
                    recorded.add(outcome.delivery_id)
                    if outcome.bounce:
                        bounced.append(outcome.delivery_id)
            if bounced:
                _mark_bounced(conn, bounced, now, self.webhook_routes)
        return {o.delivery_id for o, _ in outcomes} - recorded

    def settle_dead_claims(
        self,
        owner: int,
        outcomes: Sequence[tuple[SendOutcome, int]],
        started: Iterable[int],
        now: datetime,
        *,
        max_attempts: int,
        retry_at: Callable[[int, int], datetime],
    ) -> tuple[int, int]:
        """Apply a dead worker's journal: its results, then free what it never started.

        Results are recorded (fenced to ``owner``); rows it held but never began to send
        go back to the queue with their attempt given back. What is left ``sending`` is
        what was on the wire at the crash: the next claim takes it over as possible
        duplicates. Returns (results recorded, rows released).
        """
        lost = self.record_outcomes(
            outcomes, now, max_attempts=max_attempts, retry_at=retry_at, owner=owner
        )
        # Started with no result: on the wire at the crash (at most one per connection).
        keep = list(set(started) - {o.delivery_id for o, _ in outcomes})
        with self.engine.begin() as conn:
            where = [deliveries.c.worker_id == owner]
            if keep:
                where.append(~deliveries.c.id.in_(keep))
            released = _release(conn, *where, now=now)
        return len(outcomes) - len(lost), released


def _mark_bounced(
    conn: Connection, delivery_ids: list[int], now: datetime, routes: Routes
) -> None:
    """"No such user": the address is dead; its subscriber gets nothing more. The change of
    status, and a ``delivery.bounced`` webhook event per delivery, are written in the same
    transaction."""
    dead = (
        select(subscribers.c.id, subscribers.c.status)
        .where(
            subscribers.c.id.in_(
                select(deliveries.c.subscriber_id).where(deliveries.c.id.in_(delivery_ids))
            ),
            subscribers.c.status != BOUNCED,
        )
        .with_for_update()
    )
    before = conn.execute(dead).all()
    if before:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id.in_([r.id for r in before]))
            .values(status=BOUNCED, updated_at=now)
        )
        record_many(conn, [(r.id, r.status, BOUNCED) for r in before], "bounce", now)
    if routes.get("delivery.bounced"):
        _announce_bounces(conn, delivery_ids, now, routes)


def _announce_bounces(
    conn: Connection, delivery_ids: list[int], now: datetime, routes: Routes
) -> None:
    rows = conn.execute(
        select(deliveries.c.issue_id, deliveries.c.subscriber_id, deliveries.c.last_reply)
        .where(deliveries.c.id.in_(delivery_ids))
        .order_by(deliveries.c.id)
    ).all()
    for row in rows:
        reply = row.last_reply or ""
        code = re.search(r"\b5\.\d{1,3}\.\d{1,3}\b", reply)
        subscriber = subscriber_data(conn, row.subscriber_id)
        data = {
            "email": subscriber["email"], "kind": "hard", "status": code.group(0) if code else "",
            "diagnostic": reply, "occurred_at": now.isoformat(), "issue_id": row.issue_id,
            "source": "smtp", "subscriber_marked_bounced": True, "subscriber": subscriber,
        }  # fmt: skip
        emit(conn, routes, "delivery.bounced", data, now, row.subscriber_id)


def _release(conn: Connection, *where: Any, now: datetime) -> int:
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.status == "sending", *where)
        .values(
            status="queued",
            attempts=deliveries.c.attempts - 1,
            lease_until=None,
            claimed_by=None,
            worker_id=None,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)
