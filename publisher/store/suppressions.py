"""The suppression list in the store (database I/O): addresses never to be mailed again.

It holds only SHA-256 hashes of addresses with the reason they must not be mailed again
(``erased`` at their request, ``complaint`` about our mail). ``subscribers add`` and
``import`` refuse every suppressed address unless the operator lifts it on purpose.
:class:`SuppressionsMixin` is mixed into :class:`publisher.store.Store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.schema import suppressions

# The dialect's INSERT with ON CONFLICT: a concurrent writer of the same key makes that row
# "already present" (or updates it) instead of failing the whole statement.
INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
SUPPRESSION_REASONS = ("erased", "complaint")


@dataclass(frozen=True)
class Suppression:
    """An address (by hash) that must not be mailed again, and why."""

    reason: str
    created_at: datetime
    note: str



class SuppressionsMixin:
    """Reading and changing the suppression list; needs the Store's ``engine``."""

    engine: Engine

    def suppression(self, email_hash: str) -> Suppression | None:
        """Why an address (by its hash) must not be mailed again; None when it may be."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(suppressions).where(suppressions.c.email_hash == email_hash)
            ).first()
        return None if row is None else Suppression(row.reason, row.created_at, row.note or "")

    def is_suppressed(self, email_hash: str) -> bool:
        """Whether an address (by its hash) was erased and must not be added back."""
        with self.engine.connect() as conn:
            return (
                conn.scalar(
                    select(suppressions.c.email_hash).where(suppressions.c.email_hash == email_hash)
                )
                is not None
            )

    def suppress(self, email_hash: str, reason: str, now: datetime, note: str = "") -> None:
        """Put an address (by its hash) on the suppression list; a newer reason replaces
        an older one, so the list says what happened last."""
        if reason not in SUPPRESSION_REASONS:
            raise ValueError(f"unknown suppression reason {reason!r}")
        values = {"email_hash": email_hash, "reason": reason, "created_at": now, "note": note[:500]}
        with self.engine.begin() as conn:
            statement = INSERTS[conn.dialect.name](suppressions).values(**values)
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["email_hash"],
                    set_={"reason": reason, "created_at": now, "note": note[:500]},
                )
            )

    def lift_suppression(self, email_hash: str) -> Suppression | None:
        """Take an address off the suppression list; return what it was."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(suppressions).where(suppressions.c.email_hash == email_hash)
            ).first()
            if row is None:
                return None
            conn.execute(suppressions.delete().where(suppressions.c.email_hash == email_hash))
            return Suppression(row.reason, row.created_at, row.note or "")

    def suppression_counts(self) -> dict[str, int]:
        """``{reason: count}`` of the suppression list."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(suppressions.c.reason, func.count()).group_by(suppressions.c.reason)
            )
            return {reason: int(count) for reason, count in rows}

    def suppressed_reasons(self) -> dict[str, str]:
        """``{email_hash: reason}`` of the whole suppression list (it stays small)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(suppressions.c.email_hash, suppressions.c.reason))
            return {h: r for h, r in rows}
