"""The registry of sending processes (database I/O): register, heartbeat, locks, holders.

Every ``send``, ``run`` and ``worker`` process has a ``workers`` row while it runs. On
PostgreSQL it also holds a session-level advisory lock, keyed by its id, on a connection of
its own for its whole life: the server drops that lock the moment the session ends (the
process died, or its host did), so any other host can see that the worker is gone by
reading ``pg_locks``, without waiting for a lease. A stopped (SIGSTOP) process keeps its
session, hence its lock, hence its claims. SQLite has no such thing; there a process on
another host can only be judged by its lease (see :mod:`publisher.deliver.liveness`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from publisher.store.schema import deliveries, workers

# High half of every advisory-lock key we take ("PUBL"), so ours never meet another app's.
LOCK_NAMESPACE = 0x5055424C


@dataclass(frozen=True)
class WorkerRow:
    """A registered sending process, as the ``workers`` table holds it."""

    id: int
    host_id: str
    hostname: str
    pid: int
    process_start: str | None
    command: str
    lock_key: int | None
    started_at: datetime
    heartbeat_at: datetime

    @property
    def label(self) -> str:
        """``hostname:pid``, how people name a process."""
        return f"{self.hostname}:{self.pid}"


@dataclass(frozen=True)
class Holding:
    """The ``sending`` rows one worker holds (of one issue, or of all)."""

    worker_id: int | None
    count: int
    lease_until: datetime | None  # the latest lease among them


def lock_key(worker_id: int) -> int:
    """The advisory-lock key of a worker (bigint: namespace in the high 32 bits)."""
    return (LOCK_NAMESPACE << 32) + worker_id


class WorkersMixin:
    """The registry half of :class:`publisher.store.Store` (needs ``self.engine``)."""

    engine: Any

    @property
    def knows_sessions(self) -> bool:
        """Whether the database can tell that another host's worker is gone (PostgreSQL)."""
        return bool(self.engine.dialect.name == "postgresql")

    def register_worker(
        self,
        *,
        host_id: str,
        hostname: str,
        pid: int,
        process_start: str | None,
        command: str,
        now: datetime,
    ) -> tuple[int, Connection | None]:
        """Add this process to the registry; return its id and, on PostgreSQL, its lock
        connection (keep it open for the process's life; closing it lets others take over).

        On PostgreSQL the row and the lock are committed together, so nobody ever sees a
        registered worker without its lock.
        """
        values = {
            "host_id": host_id[:200],
            "hostname": hostname[:255],
            "pid": pid,
            "process_start": process_start,
            "command": command[:40],
            "started_at": now,
            "heartbeat_at": now,
        }
        if not self.knows_sessions:
            with self.engine.begin() as conn:
                worker_id = int(conn.execute(insert(workers).values(**values)).inserted_primary_key[0])
            return worker_id, None
        conn = self.engine.connect()
        try:
            with conn.begin():
                worker_id = int(conn.execute(insert(workers).values(**values)).inserted_primary_key[0])
                key = lock_key(worker_id)
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                conn.execute(update(workers).where(workers.c.id == worker_id).values(lock_key=key))
        except BaseException:
            conn.close()
            raise
        return worker_id, conn

    def relock_worker(self, worker_id: int) -> Connection:
        """A new lock connection for a worker whose session was lost (PostgreSQL)."""
        conn = self.engine.connect()
        try:
            with conn.begin():
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(worker_id)})
        except BaseException:
            conn.close()
            raise
        return conn

    def heartbeat_worker(
        self,
        worker_id: int,
        now: datetime,
        lease_seconds: int,
        row: dict[str, Any],
        conn: Connection | None = None,
    ) -> int:
        """Note that the worker lives and renew the leases of the rows it holds.

        Runs on the lock connection when given (so a heartbeat also proves the session
        is up). A row deleted by someone who judged the worker gone is put back from
        ``row`` (its registration values). Returns how many claims were renewed.
        """

        def beat(c: Connection) -> int:
            found = c.execute(
                update(workers).where(workers.c.id == worker_id).values(heartbeat_at=now)
            ).rowcount
            if not found:
                c.execute(insert(workers).values(id=worker_id, **{**row, "heartbeat_at": now}))
            renewed = c.execute(
                update(deliveries)
                .where(deliveries.c.worker_id == worker_id, deliveries.c.status == "sending")
                .values(lease_until=now + timedelta(seconds=lease_seconds))
            ).rowcount
            return int(renewed or 0)

        if conn is not None:
            with conn.begin():
                return beat(conn)
        with self.engine.begin() as c:
            return beat(c)

    def deregister_worker(self, worker_id: int, conn: Connection | None = None) -> None:
        """Remove the worker's row (a clean exit) and end its lock session."""
        with self.engine.begin() as c:
            c.execute(delete(workers).where(workers.c.id == worker_id))
        if conn is not None:
            conn.close()  # ends the session: the advisory lock goes with it

    def list_workers(self) -> list[WorkerRow]:
        """Every registered worker, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(workers).order_by(workers.c.id)).all()
        return [WorkerRow(**row._mapping) for row in rows]

    def locked_workers(self) -> set[int] | None:
        """Ids of the workers whose session still holds their lock; None on SQLite."""
        if not self.knows_sessions:
            return None
        with self.engine.connect() as conn:
            ids = conn.scalars(
                text(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid = :ns AND objsubid = 1"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"ns": LOCK_NAMESPACE},
            )
            return {int(i) for i in ids}

    def holdings(self, issue_id: int | None = None) -> list[Holding]:
        """Who holds ``sending`` rows (of one issue, or of every issue), and how many."""
        query = (
            select(deliveries.c.worker_id, func.count(), func.max(deliveries.c.lease_until))
            .where(deliveries.c.status == "sending")
            .group_by(deliveries.c.worker_id)
        )
        if issue_id is not None:
            query = query.where(deliveries.c.issue_id == issue_id)
        with self.engine.connect() as conn:
            return [Holding(wid, int(n), until) for wid, n, until in conn.execute(query).all()]

    def forget_worker(self, worker_id: int) -> bool:
        """Delete a gone worker's row once it holds nothing; return whether it went."""
        with self.engine.begin() as conn:
            holds = conn.scalar(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.worker_id == worker_id, deliveries.c.status == "sending")
            )
            if holds:
                return False
            conn.execute(delete(workers).where(workers.c.id == worker_id))
            return True
