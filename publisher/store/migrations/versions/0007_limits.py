"""Cluster-wide limits and relay health, shared by every sending process.

``limit_buckets`` holds one row per rate bucket (the cluster ``rate_limit``, each relay,
each paced recipient domain): the next free send slot and any "slow down" pause, in
seconds on the store's clock, and the unused slots a process handed back when it finished
(``returned``, a JSON list) for the next lease to use. ``limit_holds`` holds the connection slots of paced domains.
``relay_health`` says which relays are healthy, with their consecutive failures.

Revision ID: 0007_limits
Revises: 0006_plain_titles
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_limits"
down_revision = "0006_plain_titles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_buckets",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("paused_until", sa.Float, nullable=False),
        sa.Column("pause_streak", sa.Integer, nullable=False),
        sa.Column("pause_reply", sa.Text, nullable=False),
        sa.Column("returned", sa.Text, nullable=False),
    )
    op.create_table(
        "limit_holds",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("holder", sa.String(200), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "relay_health",
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("healthy", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("refusals", sa.Integer, nullable=False),
        sa.Column("recheck_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("relay_health")
    op.drop_table("limit_holds")
    op.drop_table("limit_buckets")
