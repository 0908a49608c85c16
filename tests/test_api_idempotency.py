"""Idempotency keys in the store, on SQLite and PostgreSQL: one claim wins, answers are
kept and replayed, keys are per token, and a day later a key is free again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher.app import open_app
from publisher.config import load
from publisher.services import idempotency
from publisher.store import IN_PROGRESS
from tests.conftest import write_config

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def test_a_key_is_claimed_once_kept_and_forgotten_after_a_day(tmp_path: Path, store_url: str) -> None:
    clock = [NOW]
    app = open_app(load(write_config(tmp_path, store_url=store_url)), clock=lambda: clock[0])
    try:
        assert idempotency.claim(app, 1, "k", "hash-a") is None
        running = idempotency.claim(app, 1, "k", "hash-a")
        assert running is not None and running.status == IN_PROGRESS
        idempotency.keep(app, 1, "k", 201, '{"id": 7}', '{"location": "subscribers/7"}')
        kept = idempotency.claim(app, 1, "k", "hash-b")
        assert kept is not None and (kept.request_hash, kept.status, kept.body) == ("hash-a", 201, '{"id": 7}')
        # Another token's key of the same name is its own.
        assert idempotency.claim(app, 2, "k", "hash-b") is None
        # A failed request gives its key back.
        idempotency.release(app, 2, "k")
        assert idempotency.claim(app, 2, "k", "hash-c") is None
        clock[0] = NOW + idempotency.RETENTION - timedelta(seconds=1)
        assert idempotency.claim(app, 1, "k", "hash-b") is not None
        clock[0] = NOW + idempotency.RETENTION + timedelta(seconds=1)
        assert idempotency.claim(app, 1, "k", "hash-b") is None
    finally:
        app.store.close()
