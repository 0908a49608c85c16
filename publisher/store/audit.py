"""The audit log in the store (database I/O): every operator action, who, what, when, where.

Actions write their audit row in the same transaction as the change (through
:func:`insert_audit`), so the log never lacks a change that happened nor holds one that was
rolled back. :class:`AuditMixin` is mixed into :class:`publisher.store.Store`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from publisher.models import AuditEntry
from publisher.store.schema_doors import audit_log

# Columns are bounded: an address or a user agent's idea of one cannot grow the table.
_LIMITS = {"actor": 400, "action": 60, "ip": 45}


def insert_audit(conn: Connection, entry: AuditEntry) -> None:
    """Add ``entry`` to the audit log inside the caller's transaction."""
    conn.execute(
        audit_log.insert().values(
            at=entry.at,
            actor=entry.actor[: _LIMITS["actor"]],
            action=entry.action[: _LIMITS["action"]],
            target=entry.target,
            detail=entry.detail,
            ip=None if entry.ip is None else entry.ip[: _LIMITS["ip"]],
        )
    )


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=row.detail,
        ip=row.ip,
    )


class AuditMixin:
    """Writing and reading the audit log; needs the Store's ``engine``."""

    engine: Engine

    def record_audit(self, entry: AuditEntry) -> None:
        """Add one entry to the audit log (its own transaction)."""
        with self.engine.begin() as conn:
            insert_audit(conn, entry)

    def audit_entries(
        self,
        limit: int = 100,
        *,
        before_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
    ) -> list[AuditEntry]:
        """The newest entries first, ``limit`` at most, optionally of one actor or action
        (``subscriber.`` with its dot: every action of that noun) and with ``target``
        containing a text (any case).

        Pages by id (keyset): pass the last id of a page as ``before_id`` for the next one,
        so a page costs the same however long the log is.
        """
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        if actor is not None:
            query = query.where(audit_log.c.actor == actor)
        if action is not None and action.endswith("."):
            query = query.where(audit_log.c.action.startswith(action, autoescape=True))
        elif action is not None:
            query = query.where(audit_log.c.action == action)
        if target:
            query = query.where(func.lower(audit_log.c.target).contains(target.lower(), autoescape=True))
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def purge_audit(self, before: datetime) -> int:
        """Delete the entries older than ``before``; return how many went."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(audit_log).where(audit_log.c.at < before)).rowcount)
