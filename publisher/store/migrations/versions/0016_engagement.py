"""Engagement tracking: stored links, anonymous hits, opt-in per-subscriber events, roll-ups.

``tracked_links`` holds every link an issue's messages may redirect to; ``engagement_hits``
one row per click, open or canary request (a nonce and a keyed client hash, no subscriber);
``engagement_subscriber`` ties a hit to a subscriber only for digests with
``individual_tracking``; ``engagement_rollup`` keeps hourly counts of purged hits.

Revision ID: 0016_engagement
Revises: 0018_autopause
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_engagement"
down_revision = "0018_autopause"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracked_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issue_id", sa.Integer, nullable=False),
        sa.Column("article_id", sa.Integer),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("url_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("issue_id", "url_hash", name="uq_tracked_links_issue_url"),
    )
    op.create_table(
        "engagement_hits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issue_id", sa.Integer, nullable=False),
        sa.Column("link_id", sa.Integer),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("client_hash", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
    )
    op.create_index("ix_engagement_hits_issue_at", "engagement_hits", ["issue_id", "at"])
    op.create_index("ix_engagement_hits_nonce", "engagement_hits", ["nonce", "client_hash"])
    op.create_index("ix_engagement_hits_at", "engagement_hits", ["at"])
    op.create_table(
        "engagement_subscriber",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hit_id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("issue_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "ix_engagement_subscriber_subscriber", "engagement_subscriber", ["subscriber_id"]
    )
    op.create_index("ix_engagement_subscriber_at", "engagement_subscriber", ["at"])
    op.create_table(
        "engagement_rollup",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issue_id", sa.Integer, nullable=False),
        sa.Column("link_id", sa.Integer),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("hour", sa.DateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_engagement_rollup_issue", "engagement_rollup", ["issue_id"])


def downgrade() -> None:
    op.drop_table("engagement_rollup")
    op.drop_table("engagement_subscriber")
    op.drop_table("engagement_hits")
    op.drop_table("tracked_links")
