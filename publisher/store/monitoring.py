"""The store's answers for monitoring (database I/O): a health probe and the ledger's figures.

:meth:`MonitoringMixin.ping` is what ``/healthz`` asks: one trivial query on a real table.
:meth:`MonitoringMixin.ledger_figures` reads, in one connection, the few counts that
``/metrics`` and ``status --json`` report (queue depth, recent sends, issues by status,
failing sources). Each count is an indexed read, so a scrape every few seconds stays cheap
on a ledger of millions of rows (the recent sends use ``ix_deliveries_sent_at``, 0011).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from publisher.errors import StoreError
from publisher.store.engine import translate
from publisher.store.schema import deliveries, issues, settings, source_state

OPEN = "sending"  # the issue status whose queued deliveries workers send


@dataclass(frozen=True)
class LedgerFigures:
    """Counts read from the ledger at one instant (see :meth:`MonitoringMixin.ledger_figures`)."""

    queued: int  # queued deliveries of open issues
    sending: int  # deliveries claimed by a worker right now (any issue)
    retry_queue: int  # of ``queued``, those that failed at least once already
    sent_windows: dict[int, int]  # seconds -> deliveries recorded sent in that trailing window
    issues_by_status: dict[str, int]
    failing_sources: int


class MonitoringMixin:
    """Health probe and monitoring counts (mixed into :class:`publisher.store.Store`)."""

    engine: Engine

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers a query on a real table.

        A SQLite file removed under a running server would still answer through the
        connections the pool holds open (and a new connection would create an empty file),
        so for SQLite the file must also still be there.
        """
        if self.engine.dialect.name == "sqlite":
            database = self.engine.url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                if not Path(database).is_file():
                    raise StoreError(f"no database at {database}")
        try:
            with self.engine.connect() as conn:
                conn.execute(select(settings.c.key).limit(1)).all()
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    def ledger_figures(self, now: datetime, windows: tuple[int, ...] = (60, 300)) -> LedgerFigures:
        """The queue, the retry queue, deliveries sent in each trailing window of ``windows``
        seconds before ``now``, issues by status, and sources whose last run failed."""
        # "Deliveries of these issues in this state": index range reads per issue
        # (ix_deliveries_claim), never a scan of the ledger, whatever its size.
        open_ids = select(issues.c.id).where(issues.c.status == OPEN)
        unfinished_ids = select(issues.c.id).where(issues.c.status != "sent")

        def count(ids: Any, status: str, *where: Any) -> Any:
            return (
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.issue_id.in_(ids), deliveries.c.status == status, *where)
            )

        with self.engine.connect() as conn:
            queued = int(conn.scalar(count(open_ids, "queued")) or 0)
            retries = int(conn.scalar(count(open_ids, "queued", deliveries.c.attempts > 0)) or 0)
            # In flight: of open issues, and of paused or cancelled ones finishing a batch.
            sending = int(conn.scalar(count(unfinished_ids, "sending")) or 0)
            sent = {
                seconds: int(
                    conn.scalar(
                        select(func.count())
                        .select_from(deliveries)
                        .where(
                            deliveries.c.status == "sent",
                            # No upper bound: a host whose clock runs ahead still counts.
                            deliveries.c.sent_at > now - timedelta(seconds=seconds),
                        )
                    )
                    or 0
                )
                for seconds in windows
            }
            by_status = {
                str(status): int(n)
                for status, n in conn.execute(
                    select(issues.c.status, func.count()).group_by(issues.c.status)
                )
            }
            failing = int(
                conn.scalar(
                    select(func.count())
                    .select_from(source_state)
                    .where(source_state.c.last_error.is_not(None), source_state.c.last_error != "")
                )
                or 0
            )
        return LedgerFigures(queued, sending, retries, sent, by_status, failing)
