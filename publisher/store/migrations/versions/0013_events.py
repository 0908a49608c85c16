"""Subscriber status changes kept as events, so charts of subscribers over time are true.

``subscriber_events`` gets one row per change of a subscriber's status (and per subscription
ended), written in the same transaction as the change. Existing subscribers are backfilled
from what their rows still say: created (as ``active``, or ``pending`` for an unconfirmed
sign-up) at ``created_at``, and, for those who left, bounced or were erased, the change to
their current status at ``updated_at``. Those backfilled rows have the source ``backfill``.

Revision ID: 0013_events
Revises: 0012_monitoring
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_events"
down_revision = "0012_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("digest_id", sa.String(100)),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("old_status", sa.String(20)),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
    )
    # Creation first, then the change to the current status: the ids keep that order.
    op.execute(
        "INSERT INTO subscriber_events (subscriber_id, at, old_status, new_status, source) "
        "SELECT id, created_at, NULL, CASE WHEN status = 'pending' THEN 'pending' "
        "ELSE 'active' END, 'backfill' FROM subscribers ORDER BY id"
    )
    op.execute(
        "INSERT INTO subscriber_events (subscriber_id, at, old_status, new_status, source) "
        "SELECT id, CASE WHEN updated_at < created_at THEN created_at ELSE updated_at END, "
        "'active', status, 'backfill' FROM subscribers "
        "WHERE status NOT IN ('active', 'pending') ORDER BY id"
    )
    op.create_index("ix_subscriber_events_at", "subscriber_events", ["at"])
    op.create_index("ix_subscriber_events_subscriber", "subscriber_events", ["subscriber_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_subscriber_events_subscriber", table_name="subscriber_events")
    op.drop_index("ix_subscriber_events_at", table_name="subscriber_events")
    op.drop_table("subscriber_events")
