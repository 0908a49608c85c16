"""Idempotency keys of the HTTP API (store I/O): claim, keep and replay a POST's response.

An API client that retries a POST after a timeout must not create a second subscriber or
queue a second send. It sends an ``Idempotency-Key``; the first request with that key
(per token) claims it and its response is kept for :data:`RETENTION`; a retry with the
same request gets that response again; the same key with a different request is refused.
"""

from __future__ import annotations

from datetime import timedelta

from publisher.app import App
from publisher.store import StoredResponse

RETENTION = timedelta(hours=24)


def claim(app: App, token_id: int, key: str, request_hash: str) -> StoredResponse | None:
    """Claim ``key`` for this request (None), or what an earlier request with it holds.

    Keys older than :data:`RETENTION` are forgotten, so they can be claimed anew.
    """
    now = app.clock()
    return app.store.claim_idempotency_key(token_id, key, request_hash, now, now - RETENTION)


def keep(app: App, token_id: int, key: str, status: int, body: str, headers: str) -> None:
    """Keep the response of the request that claimed ``key``."""
    app.store.store_idempotent_response(token_id, key, status, body, headers)


def release(app: App, token_id: int, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so that a retry runs again."""
    app.store.release_idempotency_key(token_id, key)
