"""Bounce events in the store (database I/O): one row per reported bounce, and its verdict.

Reports arrive from DSNs, ARF complaints, provider webhooks and IMAP polling, often more
than once: a report id makes a repeat harmless. A hard bounce, or enough soft ones within
a window, marks the subscriber ``bounced`` so they get no more mail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, select, update

from publisher.store.events import locked_status
from publisher.store.outbox import Routes, emit, status_changed, subscriber_data
from publisher.store.schema import bounce_events, subscribers


class BouncesMixin:
    """Recording bounces (mixed into :class:`publisher.store.Store`)."""

    engine: Engine
    webhook_routes: Routes

    def record_bounce(
        self,
        email: str,
        kind: str,
        status: str,
        diagnostic: str,
        report_id: str,
        occurred_at: datetime,
        now: datetime,
        *,
        soft_limit: int,
        soft_window: timedelta,
    ) -> str:
        """Record one bounce; return ``duplicate``, ``unknown``, ``counted`` or ``bounced``.

        A hard bounce, or the ``soft_limit``-th soft bounce within ``soft_window`` before
        ``now``, marks the subscriber ``bounced``: they get no more mail.
        """
        with self.engine.begin() as conn:
            sub_id = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email))
            seen = conn.scalar(
                select(func.count())
                .select_from(bounce_events)
                .where(bounce_events.c.report_id == report_id, bounce_events.c.email == email)
            )
            if seen:
                return "duplicate"
            conn.execute(
                insert(bounce_events).values(
                    subscriber_id=sub_id,
                    email=email,
                    kind=kind,
                    status=status,
                    diagnostic=diagnostic,
                    report_id=report_id[:500],
                    occurred_at=occurred_at,
                )
            )
            if sub_id is None:
                return "unknown"
            verdict = "bounced"
            if kind == "soft":
                recent = conn.scalar(
                    select(func.count())
                    .select_from(bounce_events)
                    .where(
                        bounce_events.c.email == email,
                        bounce_events.c.kind == "soft",
                        bounce_events.c.occurred_at >= now - soft_window,
                    )
                )
                verdict = "counted" if (recent or 0) < soft_limit else "bounced"
            if verdict == "bounced":
                before = locked_status(conn, sub_id)
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == sub_id, subscribers.c.status != "bounced")
                    .values(status="bounced", updated_at=now)
                )
                status_changed(conn, self.webhook_routes, sub_id, before, "bounced", "bounce", now)
            if self.webhook_routes.get("delivery.bounced"):
                data = {
                    "email": email, "kind": kind, "status": status, "diagnostic": diagnostic,
                    "occurred_at": occurred_at.isoformat(), "issue_id": None, "source": "report",
                    "subscriber_marked_bounced": verdict == "bounced",
                    "subscriber": subscriber_data(conn, sub_id),
                }  # fmt: skip
                emit(conn, self.webhook_routes, "delivery.bounced", data, now, sub_id)
            return verdict
