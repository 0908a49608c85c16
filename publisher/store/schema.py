"""SQLAlchemy Core tables of the store (no I/O). The Alembic migrations create the same.

Datetimes are stored as naive UTC (``UTCDateTime``) so SQLite and PostgreSQL behave the
same; Python code only ever sees aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetime in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Reject naive datetimes and store UTC without tzinfo."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to what the database returns."""
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

articles = Table(
    "articles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(200), nullable=False),
    Column("guid", String(1000), nullable=False),
    Column("feed_id", String(1000), nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("author", Text, nullable=False, default=""),
    Column("summary", Text, nullable=False, default=""),
    Column("content_html", Text, nullable=False),
    Column("tags", Text, nullable=False, default="[]"),
    Column("image", Text),
    Column("canonical_url", Text),
    Column("citations", Text, nullable=False, default="[]"),
    Column("content_hash", String(64), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "guid", name="uq_articles_source_guid"),
    Index("ix_articles_published_at", "published_at"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("email", name="uq_subscribers_email"),
    # The directory's keyset pages (0014): "newest first, of one status, below this id" is a
    # range read at any list size.
    Index("ix_subscribers_status_id", "status", "id"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("digest_id", String(100), nullable=False),
    Column("frequency", String(20), nullable=False, default="every"),
    Column("tags", Text, nullable=False, default="[]"),
    Column("created_at", UTCDateTime, nullable=False),
    # Cadence (0003): the newest regular issue a daily/weekly subscriber has had in a
    # roll-up, and the cadence period (``2026-W48``) of that roll-up.
    Column("cursor_issue_id", Integer),
    Column("cadence_key", String(40)),
    UniqueConstraint("subscriber_id", "digest_id", name="uq_subscriptions_subscriber_digest"),
    Index("ix_subscriptions_digest_id", "digest_id"),
)

issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest_id", String(100), nullable=False),
    Column("period", String(40), nullable=False),
    Column("subject", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # "every" for a regular issue; "daily"/"weekly" for a cadence roll-up (0003).
    Column("cadence", String(20), nullable=False, server_default="every"),
    # Cancelled with its articles given back to the next issue (0006).
    Column("released_at", UTCDateTime),
    UniqueConstraint("digest_id", "period", name="uq_issues_digest_period"),
)

issue_articles = Table(
    "issue_articles",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id"), primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id"), primary_key=True),
    Column("position", Integer, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    # No foreign keys (0006): their per-row triggers were most of the cost of planning an
    # issue for a large list. Issues and subscribers are never deleted.
    Column("issue_id", Integer, nullable=False),
    Column("subscriber_id", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("claimed_by", String(200)),
    Column("last_reply", Text),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    # The worker (``workers.id``) holding a ``sending`` row (0006): takeover and fencing.
    Column("worker_id", Integer),
    UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
    # "The oldest due rows of an issue" is a range read in index order at any queue size.
    Index("ix_deliveries_claim", "issue_id", "status", "next_attempt_at", "id"),
    Index(
        "ix_deliveries_worker_sending",
        "worker_id",
        sqlite_where=text("status = 'sending'"),
        postgresql_where=text("status = 'sending'"),
    ),
    # "Sent in the last minute" for /metrics and status (0011): a short range read, not a scan.
    Index(
        "ix_deliveries_sent_at",
        "sent_at",
        sqlite_where=text("status = 'sent'"),
        postgresql_where=text("status = 'sent'"),
    ),
)

# Sending processes (0006): who may hold claims, and how to tell whether they still live.
workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host_id", String(200), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("process_start", String(100)),
    Column("command", String(40), nullable=False),
    Column("lock_key", BigInteger),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)

source_state = Table(
    "source_state",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

bounce_events = Table(
    "bounce_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id")),
    Column("email", String(320), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("diagnostic", Text, nullable=False),
    Column("report_id", String(500), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    UniqueConstraint("report_id", "email", name="uq_bounce_events_report_email"),
    Index("ix_bounce_events_email", "email", "occurred_at"),
)

# The web side (0005): a subscriber's open sign-up request, confirmed by a signed link
# carrying ``nonce``; and SHA-256 hashes of erased addresses that must not come back.
signups = Table(
    "signups",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("nonce", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("digests", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(20), nullable=False),  # erased | complaint (0006)
    Column("created_at", UTCDateTime, nullable=False),
    # Where the suppression came from (0006): the preferences page, an operator's command.
    Column("note", Text, nullable=False, server_default=""),
)

# Cluster-wide limits (0006): one row per bucket ("global", "relay:NAME", "domain:NAME").
# ``next_at`` is the next free send slot and ``paused_until`` the end of a "slow down"
# backoff, both in seconds since the epoch on the store's own clock, so hosts whose clocks
# disagree still share one timeline. ``in_flight`` counts held connection slots.
limit_buckets = Table(
    "limit_buckets",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("next_at", Float, nullable=False, default=0.0),
    Column("paused_until", Float, nullable=False, default=0.0),
    Column("pause_streak", Integer, nullable=False, default=0),
    Column("pause_reply", Text, nullable=False, default=""),
    Column("returned", Text, nullable=False, default="[]"),  # unused slots handed back
)

# Who holds one of a domain's connection slots, until when (a crashed holder's expire).
limit_holds = Table(
    "limit_holds",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("holder", String(200), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

# Health of each relay, shared by every sending process.
relay_health = Table(
    "relay_health",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("healthy", Integer, nullable=False, default=1),
    Column("failures", Integer, nullable=False, default=0),
    Column("refusals", Integer, nullable=False, default=0),
    Column("recheck_at", Float, nullable=False, default=0.0),
    Column("last_error", Text, nullable=False, default=""),
    Column("changed_at", UTCDateTime, nullable=False),
)

# Subscriber status changes (0013): one row per change, written in the change's own
# transaction, so "how many were active on day D" is a sum of changes, never a guess from
# the current rows. ``old_status`` is NULL when the row was created; ``digest_id`` is set
# when one subscription ended (the subscriber's own status may not have changed).
# ``source`` says why: web, cli, api, import, bounce, complaint, erasure, backfill.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, nullable=False),
    Column("digest_id", String(100)),
    Column("at", UTCDateTime, nullable=False),
    Column("old_status", String(20)),
    Column("new_status", String(20), nullable=False),
    Column("source", String(20), nullable=False),
    Index("ix_subscriber_events_at", "at"),
    Index("ix_subscriber_events_subscriber", "subscriber_id", "id"),
)

# Auto-pauses (0018): why an issue stopped itself (which rate, its value and threshold, out
# of how many final outcomes). ``bounce_seen``/``complaint_seen`` are both rates at the last
# auto-pause: after a resume the check pauses again only when one gets worse than that.
issue_autopauses = Table(
    "issue_autopauses",
    metadata,
    Column("issue_id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),  # bounce | complaint
    Column("rate", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("final", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("bounce_seen", Float, nullable=False),
    Column("complaint_seen", Float, nullable=False),
    Column("paused_at", UTCDateTime, nullable=False),
    Column("resumed_at", UTCDateTime),
)

# Per-issue delivery counts kept by ``publisher purge`` (0018) before it deletes the
# delivery rows of a finished issue: ``delivery_counts`` adds them to what rows remain.
issue_totals = Table(
    "issue_totals",
    metadata,
    Column("issue_id", Integer, primary_key=True),
    Column("sent", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("bounced", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("hard", Integer, nullable=False, default=0),
    Column("rolled_at", UTCDateTime, nullable=False),
)

# Bounce and complaint events from provider webhooks and ARF reports (0017): one row per
# (provider, event id), so a redelivered event is stored once. ``issue_id`` and
# ``subscriber_id`` are NULL when the event could not be matched; ``occurred_at`` of the
# complaints of an issue tells how many came within a week of its send.
provider_events = Table(
    "provider_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("issue_id", Integer),
    Column("subscriber_id", Integer),
    Column("status", String(20), nullable=False),
    Column("detail", Text, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("provider", "event_id", name="uq_provider_events_provider_event"),
    Index("ix_provider_events_issue", "issue_id", "kind", "occurred_at"),
)
