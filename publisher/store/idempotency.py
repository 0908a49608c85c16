"""The HTTP API's idempotency keys (database I/O): claim a key, store its response, replay it.

A POST with an ``Idempotency-Key`` first *claims* the key for its token (an insert that
the primary key ``(token_id, key)`` lets only one request win), then stores its response.
A retry finds the stored response and replays it; a request that reuses the key with
another body is told so. Keys older than the retention are deleted as new ones arrive.
:class:`IdempotencyMixin` is mixed into :class:`publisher.store.Store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store.schema_doors import idempotency_keys

IN_PROGRESS = 0  # the status of a key whose request has not answered yet


@dataclass(frozen=True)
class StoredResponse:
    """What a key holds: the request's hash and, once answered, the response."""

    request_hash: str
    status: int
    body: str
    headers: str
    created_at: datetime


class IdempotencyMixin:
    """Idempotency keys of API tokens; needs the Store's ``engine``."""

    engine: Engine

    def claim_idempotency_key(
        self, token_id: int, key: str, request_hash: str, now: datetime, expired_before: datetime
    ) -> StoredResponse | None:
        """Claim ``key`` for this request: None when it is ours now, else what it holds.

        A key older than ``expired_before`` is forgotten first (and so are other expired
        keys of the token), so it can be claimed again.
        """
        mine = (idempotency_keys.c.token_id == token_id) & (idempotency_keys.c.key == key)
        with self.engine.begin() as conn:
            conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.token_id == token_id,
                    idempotency_keys.c.created_at < expired_before,
                )
            )
            row = conn.execute(select(idempotency_keys).where(mine)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(idempotency_keys).values(
                                token_id=token_id,
                                key=key,
                                request_hash=request_hash,
                                status=IN_PROGRESS,
                                body="",
                                headers="{}",
                                created_at=now,
                            )
                        )
                    return None
                except IntegrityError:  # another request with this key won the race
                    row = conn.execute(select(idempotency_keys).where(mine)).one()
        return StoredResponse(row.request_hash, row.status, row.body, row.headers, row.created_at)

    def store_idempotent_response(
        self, token_id: int, key: str, status: int, body: str, headers: str
    ) -> None:
        """Keep the response of the request that claimed ``key``."""
        with self.engine.begin() as conn:
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key)
                .values(status=status, body=body, headers=headers)
            )

    def release_idempotency_key(self, token_id: int, key: str) -> None:
        """Forget a claim whose request failed unexpectedly, so a retry may run it."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key
                )
            )
