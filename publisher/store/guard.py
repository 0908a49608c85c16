"""An issue's bad signals and its auto-pause record (database I/O).

The signals are counted from what the store holds, whoever recorded it:

- final outcomes: deliveries ``sent``, ``failed`` or ``bounced`` (plus what ``purge``
  rolled into ``issue_totals``);
- hard bounces: deliveries ``bounced`` (a 5.1.x reply) or ``failed`` with a permanent 5xx
  reply, plus hard ``bounce_events`` (DSNs, provider webhooks) of subscribers this issue
  reached, reported after the delivery was sent;
- complaints: ``subscriber_events`` with the source ``complaint`` (ARF reports, provider
  webhooks, the complaint path of unsubscribing) of subscribers this issue reached, within
  ``window`` after the delivery was sent.

The pause itself (and its webhook) is :meth:`publisher.store.pauses.PausesMixin.pause_issue`
with a ``reason``; this module reads the record it leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, distinct, func, or_, select

from publisher.store.schema import (
    bounce_events,
    deliveries,
    issue_autopauses,
    issue_totals,
    issues,
    subscriber_events,
)

FINAL = ("sent", "failed", "bounced")


@dataclass(frozen=True)
class Signals:
    """An issue's final outcomes, hard bounces and complaints, and their rates."""

    final: int
    hard: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        """Hard bounces per final outcome (0 when nothing is final yet)."""
        return self.hard / self.final if self.final else 0.0

    @property
    def complaint_rate(self) -> float:
        """Complaints per final outcome (0 when nothing is final yet)."""
        return self.complaints / self.final if self.final else 0.0


class GuardMixin:
    """Signals and auto-pause records (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def issue_signals(self, issue_id: int, window: timedelta = timedelta(days=7)) -> Signals:
        """Count the issue's final outcomes, hard bounces and complaints (see module doc)."""
        mine = deliveries.c.issue_id == issue_id
        permanent = or_(
            deliveries.c.status == "bounced",
            and_(deliveries.c.status == "failed", deliveries.c.last_reply.like("5%")),
        )
        reached = and_(mine, deliveries.c.status == "sent")
        with self.engine.connect() as conn:
            final = conn.scalar(select(func.count()).where(mine, deliveries.c.status.in_(FINAL)))
            hard = conn.scalar(select(func.count()).where(mine, permanent))
            dsn = conn.scalar(
                select(func.count(distinct(deliveries.c.subscriber_id))).join(
                    bounce_events, bounce_events.c.subscriber_id == deliveries.c.subscriber_id
                ).where(reached, bounce_events.c.kind == "hard",
                        bounce_events.c.occurred_at >= deliveries.c.sent_at)
            )  # fmt: skip
            complained = conn.scalar(
                select(func.count(distinct(deliveries.c.subscriber_id))).join(
                    subscriber_events,
                    subscriber_events.c.subscriber_id == deliveries.c.subscriber_id,
                ).where(reached, subscriber_events.c.source == "complaint",
                        subscriber_events.c.at >= deliveries.c.sent_at)
            )  # fmt: skip
            rolled = conn.execute(
                select(issue_totals).where(issue_totals.c.issue_id == issue_id)
            ).first()
        complaints = int(complained or 0)
        if complaints:  # the window is checked here: date arithmetic differs per database
            complaints = self._within(issue_id, window)
        extra_final = (rolled.sent + rolled.failed + rolled.bounced) if rolled else 0
        extra_hard = rolled.hard if rolled else 0
        return Signals(
            int(final or 0) + extra_final, int(hard or 0) + int(dsn or 0) + extra_hard, complaints
        )

    def _within(self, issue_id: int, window: timedelta) -> int:
        """Subscribers of the issue who complained within ``window`` after their message."""
        query = (
            select(deliveries.c.subscriber_id, deliveries.c.sent_at, subscriber_events.c.at)
            .join(
                subscriber_events, subscriber_events.c.subscriber_id == deliveries.c.subscriber_id
            )
            .where(
                deliveries.c.issue_id == issue_id,
                deliveries.c.status == "sent",
                subscriber_events.c.source == "complaint",
                subscriber_events.c.at >= deliveries.c.sent_at,
            )
        )
        with self.engine.connect() as conn:
            return len({r[0] for r in conn.execute(query) if r[2] - r[1] <= window})

    def autopause_of(self, issue_id: int) -> dict[str, Any] | None:
        """The issue's auto-pause record (``kind``, ``rate``, ``threshold``, ``final``,
        ``reason``, ``bounce_seen``, ``complaint_seen``, ``paused_at``, ``resumed_at``)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(issue_autopauses).where(issue_autopauses.c.issue_id == issue_id)
            ).first()
        return dict(row._mapping) if row is not None else None

    def open_issues_of(self, subscriber_id: int) -> list[int]:
        """Issues that reached this subscriber and are still ``sending`` (newest first):
        the ones a bounce or complaint about them may push past a threshold."""
        with self.engine.connect() as conn:
            return list(
                conn.scalars(
                    select(issues.c.id)
                    .join(deliveries, deliveries.c.issue_id == issues.c.id)
                    .where(
                        deliveries.c.subscriber_id == subscriber_id, issues.c.status == "sending"
                    )
                    .order_by(issues.c.id.desc())
                )  # fmt: skip
            )
