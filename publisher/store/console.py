"""The console's login state in the store (database I/O): sessions, failed logins, 2FA use.

Sessions are found by the SHA-256 of their id (the cookie holds the id, never the table).
Failed logins are rows counted in a trailing window, so the login limits hold however many
``publisher serve`` processes share the store. The second factor's one-time rules (a TOTP
step, a recovery code) are compare-and-set updates, so two concurrent logins cannot both
use one code. :class:`ConsoleMixin` is mixed into :class:`publisher.store.Store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, or_, select, update

from publisher.models import Issue
from publisher.store.issues import with_articles
from publisher.store.schema import issues
from publisher.store.schema_doors import console_login_failures, console_sessions, operators


@dataclass(frozen=True)
class ConsoleSession:
    """One console login: whose, at which stage (``2fa`` pending or ``ok``), until when."""

    id: int
    operator_email: str
    stage: str
    created_at: datetime
    expires_at: datetime
    ip: str | None


class ConsoleMixin:
    """Console sessions, failed-login counts and the second factor's one-time use."""

    engine: Engine

    def create_console_session(
        self, token_hash: str, email: str, stage: str, now: datetime, expires_at: datetime,
        ip: str | None,
    ) -> None:  # fmt: skip
        """Store a new session (and drop every expired one, so the table stays small)."""
        with self.engine.begin() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))
            conn.execute(
                console_sessions.insert().values(
                    token_hash=token_hash, operator_email=email, stage=stage,
                    created_at=now, expires_at=expires_at, ip=None if ip is None else ip[:45],
                )
            )  # fmt: skip

    def console_session(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        """The unexpired session with this hash, or None."""
        query = select(console_sessions).where(
            console_sessions.c.token_hash == token_hash, console_sessions.c.expires_at > now
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return ConsoleSession(
            row.id, row.operator_email, row.stage, row.created_at, row.expires_at, row.ip
        )

    def promote_console_session(self, token_hash: str, expires_at: datetime) -> bool:
        """Mark a session whose second factor was just given as fully logged in."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(console_sessions)
                .where(console_sessions.c.token_hash == token_hash)
                .values(stage="ok", expires_at=expires_at)
            ).rowcount
        return bool(changed)

    def end_console_session(self, token_hash: str) -> None:
        """Delete one session (logout)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(console_sessions).where(console_sessions.c.token_hash == token_hash)
            )

    def end_console_sessions(self, email: str, keep: str | None = None) -> int:
        """Delete an operator's sessions, except ``keep`` (a token hash); return how many."""
        query = delete(console_sessions).where(console_sessions.c.operator_email == email)
        if keep is not None:
            query = query.where(console_sessions.c.token_hash != keep)
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount)

    def login_failures(self, keys: Sequence[str], since: datetime) -> dict[str, int]:
        """How many failed logins each key had since ``since`` (zero when none)."""
        counts = dict.fromkeys(keys, 0)
        query = (
            select(console_login_failures.c.key, func.count())
            .where(
                console_login_failures.c.key.in_(list(keys)), console_login_failures.c.at > since
            )
            .group_by(console_login_failures.c.key)
        )
        with self.engine.connect() as conn:
            for key, count in conn.execute(query):
                counts[key] = int(count)
        return counts

    def record_login_failure(
        self, keys: Sequence[str], now: datetime, forget_before: datetime
    ) -> None:
        """Count one failed login against each key; forget failures older than the window."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(console_login_failures).where(console_login_failures.c.at < forget_before)
            )
            conn.execute(
                console_login_failures.insert(), [{"key": k[:100], "at": now} for k in keys]
            )

    def clear_login_failures(self, key: str) -> None:
        """Forget a key's failures (an address after its operator logged in)."""
        with self.engine.begin() as conn:
            conn.execute(delete(console_login_failures).where(console_login_failures.c.key == key))

    def claim_totp_step(self, email: str, step: int) -> bool:
        """Accept TOTP time step ``step`` for an operator once: False when it (or a later
        step) was already used."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(operators)
                .where(
                    operators.c.email == email,
                    or_(operators.c.totp_last_step.is_(None), operators.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            ).rowcount
        return bool(changed)

    def swap_recovery_codes(self, email: str, old: str, new: str) -> bool:
        """Replace an operator's recovery-code list ``old`` with ``new``; False when it
        changed meanwhile (another login used a code first)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(operators)
                .where(operators.c.email == email, operators.c.recovery_codes == old)
                .values(recovery_codes=new)
            ).rowcount
        return bool(changed)

    def issue_page(self, limit: int, before_id: int | None = None) -> list[Issue]:
        """The newest issues, ``limit`` at most, older than issue ``before_id`` when given
        (keyset paging: each page costs the same however many issues there are)."""
        query = select(issues).order_by(issues.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(issues.c.id < before_id)
        with self.engine.connect() as conn:
            return [with_articles(conn, row) for row in conn.execute(query).all()]
