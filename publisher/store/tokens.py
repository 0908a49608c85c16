"""API tokens in the store (database I/O): their hashes, scopes, expiry, use and revocation.

Only the SHA-256 of a token is stored (see :mod:`publisher.services.tokens` for why that
hash suffices); a token is found by that hash. Each change is written with its audit entry
in one transaction. :class:`TokensMixin` is mixed into :class:`publisher.store.Store`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.models import ApiToken, AuditEntry
from publisher.store.audit import insert_audit
from publisher.store.schema_doors import api_tokens

# A token used many times a second would otherwise cost a write per request: its last use
# is recorded at most once a minute, which is as precise as "last used" needs to be.
LAST_USED_PRECISION = timedelta(minutes=1)


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope=row.scope,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class TokensMixin:
    """Creating, finding, listing and revoking API tokens; needs the Store's ``engine``."""

    engine: Engine

    def api_token(self, name: str) -> ApiToken | None:
        """The token called ``name`` (revoked or not), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        return None if row is None else _token(row)

    def api_token_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose SHA-256 is ``token_hash``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_tokens).where(api_tokens.c.token_hash == token_hash)
            ).first()
        return None if row is None else _token(row)

    def list_api_tokens(self) -> list[ApiToken]:
        """Every token, revoked and expired ones too, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id))
            return [_token(row) for row in rows]

    def add_api_token(
        self,
        *,
        name: str,
        prefix: str,
        scope: str,
        token_hash: str,
        now: datetime,
        expires_at: datetime | None,
        audit: AuditEntry,
    ) -> ApiToken | None:
        """Store a new token; None (nothing written) when its name or prefix is taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    api_tokens.insert().values(
                        name=name,
                        prefix=prefix,
                        scope=scope,
                        token_hash=token_hash,
                        created_at=now,
                        expires_at=expires_at,
                    )
                )
                insert_audit(conn, audit)
        except IntegrityError:
            return None
        return self.api_token(name)

    def revoke_api_token(self, name: str, now: datetime, audit: AuditEntry) -> bool:
        """Revoke the token called ``name``; False when there is no such token or it was
        revoked already."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
            if changed:
                insert_audit(conn, audit)
        return bool(changed)

    def touch_api_token(self, token_id: int, now: datetime) -> None:
        """Record a use of the token (at most once per LAST_USED_PRECISION)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.id == token_id,
                    or_(
                        api_tokens.c.last_used_at.is_(None),
                        api_tokens.c.last_used_at <= now - LAST_USED_PRECISION,
                    ),
                )
                .values(last_used_at=now)
            )
