"""SQLAlchemy Core tables of engagement tracking (no I/O); migration 0016_engagement.

- ``tracked_links``: the links an issue's messages may redirect to (issue, article, URL). A
  click token names a row here, never a URL, so a redirect can only go where the issue linked.
- ``engagement_hits``: one row per request on ``/r/`` or ``/o/``: the message's random nonce
  and a keyed hash of the client's IP and user agent (never the IP or agent themselves), the
  verdict (``human``, ``automated`` or, for opens, ``proxy``) and why. No subscriber here.
- ``engagement_subscriber``: which subscriber a hit came from, written only when the digest
  has ``individual_tracking = true``; deleted after ``retention_days``, exported and erased
  with the subscriber.
- ``engagement_rollup``: hourly counts of hits already purged, so the per-issue, per-article
  and per-link figures outlive the rows they came from.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint

from publisher.store.schema import UTCDateTime, metadata

tracked_links = Table(
    "tracked_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, nullable=False),
    Column("article_id", Integer),
    Column("url", Text, nullable=False),
    # The SHA-256 of the URL: unique per issue without indexing URLs of any length.
    Column("url_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("issue_id", "url_hash", name="uq_tracked_links_issue_url"),
)

engagement_hits = Table(
    "engagement_hits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, nullable=False),
    Column("link_id", Integer),
    Column("kind", String(10), nullable=False),
    Column("nonce", String(32), nullable=False),
    Column("client_hash", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("verdict", String(10), nullable=False),
    Column("reason", String(20), nullable=False, default=""),
    Index("ix_engagement_hits_issue_at", "issue_id", "at"),
    Index("ix_engagement_hits_nonce", "nonce", "client_hash"),
    Index("ix_engagement_hits_at", "at"),
)

engagement_subscriber = Table(
    "engagement_subscriber",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hit_id", Integer, nullable=False),
    Column("subscriber_id", Integer, nullable=False),
    Column("issue_id", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_engagement_subscriber_subscriber", "subscriber_id"),
    Index("ix_engagement_subscriber_at", "at"),
)

engagement_rollup = Table(
    "engagement_rollup",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, nullable=False),
    Column("link_id", Integer),
    Column("kind", String(10), nullable=False),
    Column("verdict", String(10), nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Index("ix_engagement_rollup_issue", "issue_id"),
)
