"""Subscriber administration in the store (database I/O): bulk import, changes, listing.

:class:`SubscriberAdmin` is mixed into :class:`publisher.store.Store`. Its import writes a
whole batch of rows in one transaction with a few set-based statements (one lookup of the
addresses, one of the suppression list, one multi-row INSERT of subscribers with RETURNING,
one of subscriptions) instead of several statements per row: that is what takes an import
from about 250 rows/s to tens of thousands.

The import checks the suppression list (:mod:`publisher.store.suppressions`) in the same
transaction, so a suppressed address is refused whatever the batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from publisher.store.events import locked_status, record_many
from publisher.store.outbox import Routes, emit, status_changed, subscriber_data
from publisher.store.schema import UTCDateTime, issues, subscribers, subscriptions, suppressions
from publisher.store.suppressions import Suppression

_IN_CHUNK = 900  # bound parameters per IN (...) list: well under SQLite's limit


# One subscription to write: (digest id, frequency, topics). A plain tuple, because an
# import makes one per row and a class instance costs several times more to build.
NewSubscription = tuple[str, str, tuple[str, ...]]


@dataclass(slots=True)
class ImportGroup:
    """The rows of one address in a batch: the first row's name and status, every row's
    subscriptions, and the line numbers (for reporting)."""

    email: str
    email_hash: str
    name: str
    status: str
    lines: list[int]
    subscriptions: list[NewSubscription]


@dataclass
class BatchResult:
    """What one batch did: addresses created, already present, and refused by line."""

    created: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    refused: list[tuple[int, str, Suppression]] = field(default_factory=list)  # line, email, why
    subscriptions: int = 0


@dataclass(frozen=True)
class SubscriptionRow:
    """One line of ``subscribers list`` / ``export``: a subscriber and one subscription."""

    subscriber_id: int
    email: str
    name: str
    status: str
    created_at: datetime
    digest_id: str | None
    frequency: str | None
    tags: tuple[str, ...]


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _db_time(conn: Connection, value: datetime) -> Any:
    """``value`` as the driver takes it for a UTCDateTime column (SQLite: a string)."""
    process = UTCDateTime().bind_processor(conn.dialect)
    return process(value) if process else value


def _executemany(
    conn: Connection, table: str, columns: str, rows: list[tuple[Any, ...]], unique: str
) -> list[Any]:
    """SQLite: one executemany of ``INSERT ... ON CONFLICT (unique) DO NOTHING``."""
    marks = ", ".join("?" * len(rows[0]))
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({unique}) DO NOTHING",
        rows,
    )
    return []


def _copy(
    conn: Connection,
    table: str,
    columns: str,
    rows: list[tuple[Any, ...]],
    unique: str,
    returning: str = "",
) -> list[Any]:
    """PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT
    DO NOTHING. COPY is the fastest way in; the INSERT keeps the conflict handling that a
    COPY straight into the table would not have."""
    staging = f"import_{table}"
    with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
            f"ON CONFLICT ({unique}) DO NOTHING" + (f" RETURNING {returning}" if returning else "")
        )
        inserted = cursor.fetchall() if returning else []
        cursor.execute(f"DELETE FROM {staging}")  # the next batch may share this transaction
    return inserted


def _lookup(conn: Connection, query: str, key: str, values: Sequence[str]) -> list[Any]:
    """Rows of ``query WHERE key IN values``, at the driver level: Core's expanding IN of
    a few thousand parameters costs more than the query. PostgreSQL takes one array."""
    values = list(dict.fromkeys(values))
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        return list(conn.exec_driver_sql(f"{query} WHERE {key} = ANY(%s)", (values,)))
    found: list[Any] = []
    for chunk in _chunks(values):
        marks = ", ".join("?" * len(chunk))
        found += conn.exec_driver_sql(f"{query} WHERE {key} IN ({marks})", tuple(chunk)).all()
    return found


_NEW_COLUMNS = "email, name, status, created_at, updated_at"


def _insert_new_sqlite(
    conn: Connection, groups: Sequence[ImportGroup], stamp: Any
) -> dict[str, int]:
    """Insert the addresses not in the store yet; {email: id} of those inserted.

    Multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (SQLite 3.35+) of 1,000 rows a
    statement: the rows returned are exactly the new ones, with no lookup before or after.
    """
    rows = [(g.email, g.name, g.status, stamp, stamp) for g in groups]
    inserted: dict[str, int] = {}
    for chunk in _chunks(rows, 1000):
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        result = conn.exec_driver_sql(
            f"INSERT INTO subscribers ({_NEW_COLUMNS}) VALUES {values} "
            "ON CONFLICT (email) DO NOTHING RETURNING email, id",
            tuple(v for row in chunk for v in row),
        )
        inserted.update(result.all())
    return inserted


def _insert_new_postgresql(
    conn: Connection, groups: Sequence[ImportGroup], stamp: Any
) -> dict[str, int]:
    """COPY the batch in and keep what was new: RETURNING gives exactly the rows inserted,
    so an address already there (or inserted by another process meanwhile) is skipped."""
    rows = [(g.email, g.name, g.status, stamp, stamp) for g in groups]
    if not rows:
        return {}
    return dict(_copy(conn, "subscribers", _NEW_COLUMNS, rows, "email", returning="email, id"))


_INSERT_NEW = {"sqlite": _insert_new_sqlite, "postgresql": _insert_new_postgresql}
_BULK_INSERTS = {"sqlite": _executemany, "postgresql": _copy}


def _insert_many(
    conn: Connection, table: str, columns: str, rows: Sequence[tuple[Any, ...]], unique: str
) -> None:
    """Insert rows already in the driver's types, skipping those whose ``unique`` key exists.

    Skipping SQLAlchemy's per-row parameter processing is most of the gain over Core's
    executemany; the rest is COPY on PostgreSQL.
    """
    if rows:
        _BULK_INSERTS[conn.dialect.name](conn, table, columns, list(rows), unique)


class SubscriberAdmin:
    """Store methods for the ``subscribers`` commands (mixed into Store)."""

    engine: Engine
    webhook_routes: Routes

    # -- bulk import -------------------------------------------------------------------

    def import_batch(
        self,
        groups: Sequence[ImportGroup],
        created_here: set[str],
        now: datetime,
        cadence: Mapping[tuple[str, str], tuple[int, str | None]],
    ) -> BatchResult:
        """Write one batch of import rows in one transaction.

        A new address becomes a subscriber with its subscriptions. An address already in
        the store is left exactly as it is (an import never re-subscribes someone who left),
        unless it is in ``created_here`` (created by an earlier batch of the same import),
        when its rows add their subscriptions. A suppressed address is refused with its
        reason. ``cadence`` maps ``(digest, frequency)`` to the cursor and cadence period a
        new daily/weekly subscription starts from.
        """
        result = BatchResult()
        with self.engine.begin() as conn:
            banned = self._suppressed(conn, [g.email_hash for g in groups])
            candidates: list[ImportGroup] = []
            for group in groups:
                reason = banned.get(group.email_hash)
                if reason is not None and group.email not in created_here:
                    result.refused.extend((line, group.email, reason) for line in group.lines)
                elif group.email not in created_here:
                    candidates.append(group)
            ids = _INSERT_NEW[conn.dialect.name](conn, candidates, _db_time(conn, now))
            result.created = [g.email for g in candidates if g.email in ids]
            record_many(
                conn, [(ids[g.email], None, g.status) for g in candidates if g.email in ids],
                "import", now,
            )  # fmt: skip
            result.present = [g.email for g in candidates if g.email not in ids]
            again = [g.email for g in groups if g.email in created_here]
            ids.update(self._existing_ids(conn, again))
            writable = set(result.created).union(again)
            stamp = _db_time(conn, now)
            topics: dict[tuple[str, ...], str] = {}
            rows = [
                (
                    ids[g.email],
                    digest_id,
                    frequency,
                    topics.get(tags) or topics.setdefault(tags, json.dumps(list(tags))),
                    stamp,
                    *cadence.get((digest_id, frequency), (None, None)),
                )
                for g in groups
                if g.email in writable
                for digest_id, frequency, tags in g.subscriptions
            ]
            _insert_many(
                conn,
                "subscriptions",
                "subscriber_id, digest_id, frequency, tags, created_at, cursor_issue_id, cadence_key",
                rows,
                "subscriber_id, digest_id",
            )
            result.subscriptions = len(rows)
            self._announce(conn, [ids[g.email] for g in candidates if g.email in ids and
                                  g.status == "active"], now)  # fmt: skip
        return result

    def _announce(self, conn: Connection, created: Sequence[int], now: datetime) -> None:
        """``subscriber.created`` for each address an import made active (when a hook wants it)."""
        if not self.webhook_routes.get("subscriber.created"):
            return
        for sub_id in created:
            data = {"subscriber": subscriber_data(conn, sub_id), "previous_status": None,
                    "digest": None, "source": "import"}  # fmt: skip
            emit(conn, self.webhook_routes, "subscriber.created", data, now, sub_id)

    def _existing_ids(self, conn: Connection, emails: Sequence[str]) -> dict[str, int]:
        return dict(_lookup(conn, "SELECT email, id FROM subscribers", "email", emails))

    def _suppressed(self, conn: Connection, hashes: Sequence[str]) -> dict[str, Suppression]:
        hits = [h for (h,) in _lookup(conn, "SELECT email_hash FROM suppressions", "email_hash", hashes)]
        if not hits:  # the usual case: no second query
            return {}
        rows = conn.execute(select(suppressions).where(suppressions.c.email_hash.in_(hits)))
        return {r.email_hash: Suppression(r.reason, r.created_at, r.note) for r in rows}

    def cadence_cursors(self, digest_ids: Sequence[str]) -> dict[str, int]:
        """The newest regular issue of each digest (0 when none): where a new daily or
        weekly subscription's first roll-up starts, so it never gets a backlog."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(issues.c.digest_id, func.max(issues.c.id))
                .where(issues.c.digest_id.in_(list(digest_ids)), issues.c.cadence == "every")
                .group_by(issues.c.digest_id)
            )
            found = {digest_id: latest for digest_id, latest in rows}
        return {d: int(found.get(d) or 0) for d in digest_ids}

    # -- changing and listing subscriptions -------------------------------------------------

    def set_tags(self, subscriber_id: int, digest_ids: Sequence[str], tags: Sequence[str]) -> int:
        """Set the topics of these subscriptions of a subscriber; return how many changed."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(subscriptions)
                .where(
                    subscriptions.c.subscriber_id == subscriber_id,
                    subscriptions.c.digest_id.in_(list(digest_ids)),
                )
                .values(tags=json.dumps(list(tags)))
            )
            return int(done.rowcount or 0)

    def set_name(self, subscriber_id: int, name: str, now: datetime) -> None:
        """Change a subscriber's display name."""
        with self.engine.begin() as conn:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(name=name, updated_at=now)
            )

    def reactivate(self, subscriber_id: int, now: datetime, *, source: str = "cli") -> None:
        """Make a subscriber active again (the operator passed ``--reactivate``)."""
        with self.engine.begin() as conn:
            before = locked_status(conn, subscriber_id)
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(status="active", updated_at=now)
            )
            if before is not None:
                status_changed(conn, self.webhook_routes, subscriber_id, before, "active", source, now)

    def subscription_listing(self, status: str | None = None) -> Iterator[SubscriptionRow]:
        """Every subscription with its subscriber (one row with no digest for a subscriber
        who has none), by subscriber then digest; streamed, so it scales to big lists."""
        query = (
            select(
                subscribers.c.id,
                subscribers.c.email,
                subscribers.c.name,
                subscribers.c.status,
                subscribers.c.created_at,
                subscriptions.c.digest_id,
                subscriptions.c.frequency,
                subscriptions.c.tags,
            )
            .select_from(
                subscribers.outerjoin(
                    subscriptions, subscriptions.c.subscriber_id == subscribers.c.id
                )
            )
            .order_by(subscribers.c.id, subscriptions.c.digest_id)
        )
        if status:
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(query)
            for row in result:
                yield SubscriptionRow(
                    subscriber_id=row.id,
                    email=row.email,
                    name=row.name,
                    status=row.status,
                    created_at=row.created_at,
                    digest_id=row.digest_id,
                    frequency=row.frequency,
                    tags=tuple(json.loads(row.tags)) if row.tags else (),
                )

    def analyze_subscribers(self) -> None:
        """Refresh the planner's statistics after a bulk import: a plan made for a nearly
        empty table (nested loops) grows quadratically once it holds a million rows."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE subscribers")
                conn.exec_driver_sql("ANALYZE subscriptions")
            else:
                conn.exec_driver_sql("PRAGMA optimize")
