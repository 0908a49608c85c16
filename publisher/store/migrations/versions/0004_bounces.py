"""Bounce events: hard and soft bounces read from delivery status notifications.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id")),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("diagnostic", sa.Text, nullable=False),
        sa.Column("report_id", sa.String(500), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("report_id", "email", name="uq_bounce_events_report_email"),
    )
    op.create_index("ix_bounce_events_email", "bounce_events", ["email", "occurred_at"])


def downgrade() -> None:
    op.drop_table("bounce_events")
