"""Provider webhook and ARF events: bounces and complaints, each stored once.

``provider_events`` has one row per (provider, event id): a provider that delivers an
event again finds it there and nothing is done twice. ``issue_id`` and ``subscriber_id``
are those the event's Message-ID (or metadata) named, NULL when it named none.

Revision ID: 0017_provider_events
Revises: 0015_console
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_provider_events"
down_revision = "0015_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("issue_id", sa.Integer),
        sa.Column("subscriber_id", sa.Integer),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("provider", "event_id", name="uq_provider_events_provider_event"),
    )
    op.create_index(
        "ix_provider_events_issue", "provider_events", ["issue_id", "kind", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_provider_events_issue", table_name="provider_events")
    op.drop_table("provider_events")
