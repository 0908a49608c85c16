"""SQLAlchemy Core tables of the operators' side and the HTTP doors (no I/O).

Operators, API tokens and the audit log; the API's idempotency keys; the console's sessions
and failed logins; the webhook outbox, deliveries, hooks and attempts. They share the
:data:`~publisher.store.schema.metadata` of the core tables in :mod:`publisher.store.schema`
and are kept apart only so that each module stays readable; the Alembic migrations create
the same.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from publisher.store.schema import UTCDateTime, metadata

# Operators of the console (0011): the password as an argon2 hash; the TOTP secret and the
# hashes of unused recovery codes stay NULL until the operator enrols a second factor.
operators = Table(
    "operators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", Text),
    Column("recovery_codes", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime),
    # The last TOTP time step accepted (0015): a code is good for one login only.
    Column("totp_last_step", BigInteger),
    UniqueConstraint("email", name="uq_operators_email"),
)

# API tokens (0011): only the SHA-256 of the whole token is kept; ``prefix`` is its public
# part (``pub_<prefix>_...``), so a token seen in a log can be named without its secret.
# A revoked token keeps its row (and name) for the audit trail.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("scope", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    UniqueConstraint("name", name="uq_api_tokens_name"),
    UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
    UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
)

# Every operator action (0011): who (``cli:<user>``, an operator's email, ``token:<name>``),
# what, on what, when and from which address. Read newest first, and purged by age.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(400), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("ip", String(45)),
    Index("ix_audit_log_at", "at"),
)

# Idempotency keys of the HTTP API (0014): the first response to a POST made with an
# ``Idempotency-Key``, per token, kept 24 hours so a retried request replays it rather than
# acting twice. ``request_hash`` tells a retry from a different request reusing the key;
# ``status`` 0 marks a request still being handled.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("token_id", Integer, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("headers", Text, nullable=False, default="{}"),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# Console logins (0015): only the SHA-256 of the session id that the cookie carries, so a
# copy of the database logs nobody in. ``stage`` is "2fa" between the password and the
# second factor (a short expiry), "ok" once the operator is fully logged in.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("operator_email", String(320), nullable=False),
    Column("stage", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ip", String(45)),
    UniqueConstraint("token_hash", name="uq_console_sessions_token_hash"),
    Index("ix_console_sessions_expires_at", "expires_at"),
)

# Failed console logins (0015), one row each, keyed "ip:<address>" or "address:<sha256>":
# the login limits count them in a trailing window, across every process.
console_login_failures = Table(
    "console_login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_console_login_failures_key_at", "key", "at"),
)


# Outgoing webhooks (0014): the outbox of events (in their cause's transaction), one delivery
# per (hook, event), each hook's state (on, or off after failures) and every POST made.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(40), nullable=False),
    Column("type", String(40), nullable=False),
    Column("data", Text, nullable=False),
    Column("subscriber_id", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("event_id", name="uq_webhook_events_event_id"),
    Index("ix_webhook_events_created_at", "created_at"),
    Index("ix_webhook_events_subscriber", "subscriber_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hook", String(100), nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # pending | delivered | failed | dropped
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("last_code", Integer),
    Column("last_error", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("hook", "event_id", name="uq_webhook_deliveries_hook_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

webhook_hooks = Table(
    "webhook_hooks",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("enabled", Integer, nullable=False, default=1),
    Column("failures", Integer, nullable=False, default=0),  # failed attempts in a row
    Column("disabled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_failure_at", UTCDateTime),
    Column("last_error", Text, nullable=False, default=""),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hook", String(100), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("error", Text, nullable=False, default=""),
    Column("duration_ms", Integer, nullable=False, default=0),
    Index("ix_webhook_attempts_at", "at"),
)
