"""Operators of the console in the store (database I/O): accounts, password hashes, 2FA.

The store only keeps what it is given: hashing and checking passwords, and the rules for
roles and addresses, live in :mod:`publisher.services.operators`. Each change is written
with its audit entry in one transaction. :class:`OperatorsMixin` is mixed into
:class:`publisher.store.Store`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from publisher.models import AuditEntry, Operator
from publisher.store.audit import insert_audit
from publisher.store.schema_doors import console_sessions, operators


def _operator(row: Any) -> Operator:
    return Operator(
        email=row.email,
        role=row.role,
        password_hash=row.password_hash,
        totp_secret=row.totp_secret,
        recovery_codes=row.recovery_codes,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        totp_last_step=row.totp_last_step,
    )


class OperatorsMixin:
    """Reading and changing operator accounts; needs the Store's ``engine``."""

    engine: Engine

    def operator(self, email: str) -> Operator | None:
        """The operator with this (normalized) address, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(operators).where(operators.c.email == email)).first()
        return None if row is None else _operator(row)

    def list_operators(self) -> list[Operator]:
        """Every operator, by address."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(operators).order_by(operators.c.email))
            return [_operator(row) for row in rows]

    def add_operator(
        self, email: str, role: str, password_hash: str, now: datetime, audit: AuditEntry
    ) -> bool:
        """Create an operator; False (and nothing written) when the address is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    operators.insert().values(
                        email=email, role=role, password_hash=password_hash, created_at=now
                    )
                )
                insert_audit(conn, audit)
        except IntegrityError:  # uq_operators_email, also against a concurrent add
            return False
        return True

    def remove_operator(self, email: str, audit: AuditEntry) -> str:
        """Delete an operator and end their console sessions: ``"removed"``, ``"missing"``
        (no such address) or ``"last admin"`` (refused: nobody could manage operators
        from the console any more). Checked and deleted in one transaction."""
        with self.engine.begin() as conn:
            role = conn.execute(select(operators.c.role).where(operators.c.email == email)).scalar()
            if role is None:
                return "missing"
            if role == "admin":
                admins = conn.execute(
                    select(func.count()).select_from(operators).where(operators.c.role == "admin")
                ).scalar_one()
                if admins <= 1:
                    return "last admin"
            conn.execute(operators.delete().where(operators.c.email == email))
            conn.execute(
                console_sessions.delete().where(console_sessions.c.operator_email == email)
            )
            insert_audit(conn, audit)
        return "removed"

    def update_operator(self, email: str, audit: AuditEntry | None, **values: Any) -> bool:
        """Set columns of one operator (``password_hash``, ``totp_secret``,
        ``recovery_codes``, ``last_login_at``, ``role``); False when there is none."""
        unknown = set(values) - {
            "password_hash", "totp_secret", "recovery_codes", "last_login_at", "role",
            "totp_last_step",
        }  # fmt: skip
        if unknown:
            raise ValueError(f"not operator columns one may set: {sorted(unknown)}")
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(operators).where(operators.c.email == email).values(**values)
            ).rowcount
            if changed and audit is not None:
                insert_audit(conn, audit)
        return bool(changed)
