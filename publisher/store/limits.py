"""Cluster-wide send limits and relay health in the store (database I/O).

Every sending process on every host that shares the store takes its send slots from here,
so ``rate_limit``, a relay's ``rate`` and a domain's ``rate`` hold for the cluster, not per
process. A bucket row keeps the next free slot (``next_at``) on one timeline; a lease of
``count`` slots is one short transaction that moves ``next_at`` forward (``SELECT ... FOR
UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so leases never overlap and slots
are spaced ``1 / rate`` apart across the cluster. A "slow down" reply pauses the bucket
for everyone. Times are seconds on the store's clock (PostgreSQL's ``clock_timestamp()``;
SQLite lives on one host, so its wall clock), so hosts whose clocks disagree still agree.

Relay health is a row per relay: consecutive connection failures and consecutive 421
replies; at the threshold the relay is unhealthy until a process re-checks it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.schema import limit_buckets, limit_holds, relay_health

MAX_PAUSE_SECONDS = 600.0
MAX_RETURNED = 500  # handed-back slots kept per bucket


@dataclass(frozen=True)
class Lease:
    """Send slots (store seconds, ascending); ``now`` when leased; the pause ``streak``."""

    slots: tuple[float, ...]
    now: float
    streak: int


@dataclass(frozen=True)
class RelayState:
    """One relay's shared health."""

    name: str
    healthy: bool
    failures: int
    refusals: int
    recheck_at: float
    last_error: str
    changed_at: datetime


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class LimitsMixin:
    """Store methods for shared limits and relay health (mixed into ``Store``)."""

    engine: Engine

    def store_time(self, conn: Connection) -> float:
        """Seconds since the epoch on the store's clock."""
        if conn.dialect.name == "postgresql":
            return float(conn.scalar(text("SELECT extract(epoch from clock_timestamp())")))
        return time.time()

    def _bucket(self, conn: Connection, key: str) -> Any:
        conn.execute(
            _insert(conn, limit_buckets)
            .values(key=key, next_at=0.0, paused_until=0.0, pause_streak=0, pause_reply="",
                    returned="[]")  # fmt: skip
            .on_conflict_do_nothing()
        )
        return conn.execute(
            select(limit_buckets).where(limit_buckets.c.key == key).with_for_update()
        ).one()

    def lease_slots(self, key: str, rate: float, count: int, slack: float) -> Lease:
        """Take ``count`` send slots of bucket ``key`` (``rate`` per second).

        Slots handed back by a finished process come first (if still usable); the rest
        follow on from the bucket's next free slot, the end of its pause, and ``now -
        slack`` (a short gap since the last lease is not lost). With ``rate`` 0 the bucket
        only carries pauses: every slot is at the start.
        """
        with self.engine.begin() as conn:
            now = self.store_time(conn)
            row = self._bucket(conn, key)
            floor = max(now - slack, row.paused_until)
            if rate <= 0:
                return Lease((max(floor, now - slack),) * count, now, row.pause_streak)
            spare = sorted(t for t in json.loads(row.returned or "[]") if t >= floor)
            slots, spare = spare[:count], spare[count:]
            start = max(floor, row.next_at)
            step = 1.0 / rate
            need = count - len(slots)
            slots += [start + i * step for i in range(need)]
            conn.execute(
                update(limit_buckets)
                .where(limit_buckets.c.key == key)
                .values(next_at=start + need * step if need else row.next_at,
                        returned=json.dumps(spare))  # fmt: skip
            )
            return Lease(tuple(sorted(slots)), now, row.pause_streak)

    def return_slots(self, key: str, slots: list[float]) -> None:
        """Hand back unused slots (store seconds) for the next lease of any process."""
        with self.engine.begin() as conn:
            now = self.store_time(conn)
            row = self._bucket(conn, key)
            spare = [t for t in json.loads(row.returned or "[]") + slots if t > now]
            conn.execute(
                update(limit_buckets)
                .where(limit_buckets.c.key == key)
                .values(returned=json.dumps(sorted(spare)[:MAX_RETURNED]))
            )

    def pause_bucket(self, key: str, base_seconds: float, reply: str) -> float:
        """The relay said "slow down": pause ``key`` for everyone; return the pause length.

        Consecutive refusals (with no accepted message between) double the pause.
        """
        with self.engine.begin() as conn:
            now = self.store_time(conn)
            row = self._bucket(conn, key)
            streak = row.pause_streak + 1
            seconds = min(base_seconds * 2 ** (streak - 1), MAX_PAUSE_SECONDS)
            conn.execute(
                update(limit_buckets)
                .where(limit_buckets.c.key == key)
                .values(
                    pause_streak=streak,
                    paused_until=max(row.paused_until, now + seconds),
                    pause_reply=reply[:300],
                )
            )
            return seconds

    def clear_pause_streak(self, key: str) -> None:
        """A message was accepted again: the next refusal starts from the base pause."""
        with self.engine.begin() as conn:
            conn.execute(
                update(limit_buckets)
                .where(limit_buckets.c.key == key, limit_buckets.c.pause_streak > 0)
                .values(pause_streak=0)
            )

    def paused_buckets(self) -> list[dict[str, Any]]:
        """Buckets paused now: ``key``, ``until`` (aware datetime), ``reply``."""
        with self.engine.connect() as conn:
            now = self.store_time(conn)
            rows = conn.execute(
                select(limit_buckets).where(limit_buckets.c.paused_until > now)
            ).all()
        return [
            {
                "key": r.key,
                "until": datetime.fromtimestamp(r.paused_until, UTC),
                "reply": r.pause_reply,
            }
            for r in rows
        ]

    # -- connection slots ---------------------------------------------------------------

    def hold_slot(self, key: str, holder: str, limit: int, seconds: float) -> bool:
        """Take (or renew) one of ``limit`` connection slots of ``key`` for ``seconds``."""
        with self.engine.begin() as conn:
            now = self.store_time(conn)
            self._bucket(conn, key)  # the bucket row lock serialises the slot count
            conn.execute(
                delete(limit_holds).where(limit_holds.c.key == key, limit_holds.c.expires_at < now)
            )
            mine = limit_holds.c.key == key, limit_holds.c.holder == holder
            if conn.execute(select(limit_holds.c.holder).where(*mine)).first() is not None:
                conn.execute(update(limit_holds).where(*mine).values(expires_at=now + seconds))
                return True
            held = conn.scalar(
                select(func.count()).select_from(limit_holds).where(limit_holds.c.key == key)
            )
            if int(held or 0) >= limit:
                return False
            conn.execute(
                limit_holds.insert().values(key=key, holder=holder, expires_at=now + seconds)
            )
            return True

    def release_slot(self, key: str, holder: str) -> None:
        """Give a connection slot back."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(limit_holds).where(limit_holds.c.key == key, limit_holds.c.holder == holder)
            )

    # -- relay health -------------------------------------------------------------------

    def relay_states(self) -> dict[str, RelayState]:
        """Every relay's health row by name (relays never seen have none: healthy)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(relay_health)).all()
        return {
            r.name: RelayState(
                r.name, bool(r.healthy), r.failures, r.refusals, r.recheck_at, r.last_error,
                r.changed_at,
            )
            for r in rows
        }  # fmt: skip

    def relay_now(self) -> float:
        """The store's clock, for comparing with ``recheck_at``."""
        with self.engine.connect() as conn:
            return self.store_time(conn)

    def relay_trouble(
        self, name: str, error: str, *, refusal: bool, threshold: int, recheck: float
    ) -> RelayState:
        """Count one connection failure (or a 421 when ``refusal``); at ``threshold`` in a
        row the relay turns unhealthy and is re-checked after ``recheck`` seconds."""
        with self.engine.begin() as conn:
            now = self.store_time(conn)
            row = self._relay_row(conn, name)
            failures = 0 if refusal else row.failures + 1
            refusals = row.refusals + 1 if refusal else 0
            healthy = bool(row.healthy) and max(failures, refusals) < threshold
            values = {
                "failures": failures,
                "refusals": refusals,
                "healthy": int(healthy),
                "last_error": error[:500],
            }
            recheck_at: float = row.recheck_at if healthy else now + recheck
            changed_at: datetime = (
                row.changed_at if healthy == bool(row.healthy) else self._stamp(conn)
            )
            values = {**values, "recheck_at": recheck_at, "changed_at": changed_at}
            conn.execute(update(relay_health).where(relay_health.c.name == name).values(**values))
            return RelayState(name, healthy, failures, refusals, recheck_at, error, changed_at)

    def relay_recovered(self, name: str) -> None:
        """A connection (or message) went through: the relay is healthy, its counts reset."""
        with self.engine.begin() as conn:
            row = self._relay_row(conn, name)
            if row.healthy and not row.failures and not row.refusals:
                return
            conn.execute(
                update(relay_health)
                .where(relay_health.c.name == name)
                .values(healthy=1, failures=0, refusals=0, changed_at=self._stamp(conn))
            )

    def claim_relay_recheck(self, name: str, recheck: float) -> bool:
        """Whether this process may re-check an unhealthy relay now (one process at a time)."""
        with self.engine.begin() as conn:
            now = self.store_time(conn)
            row = self._relay_row(conn, name)
            if row.healthy or row.recheck_at > now:
                return bool(row.healthy)
            conn.execute(
                update(relay_health)
                .where(relay_health.c.name == name)
                .values(recheck_at=now + recheck)
            )
            return True

    def _stamp(self, conn: Connection) -> datetime:
        return datetime.fromtimestamp(self.store_time(conn), UTC)

    def _relay_row(self, conn: Connection, name: str) -> Any:
        conn.execute(
            _insert(conn, relay_health)
            .values(name=name, healthy=1, failures=0, refusals=0, recheck_at=0.0,
                    last_error="", changed_at=self._stamp(conn))  # fmt: skip
            .on_conflict_do_nothing()
        )
        return conn.execute(
            select(relay_health).where(relay_health.c.name == name).with_for_update()
        ).one()
