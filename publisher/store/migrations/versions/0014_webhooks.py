"""Outgoing webhooks: the event outbox, deliveries per hook, hook state, attempt history.

``webhook_events`` holds each event (written in the transaction of what caused it),
``webhook_deliveries`` one row per hook and event with its attempts and next try,
``webhook_hooks`` each configured hook's state (on, or turned off after failures in a
row), and ``webhook_attempts`` every POST made, for ``publisher webhooks history``.

Revision ID: 0014_webhooks
Revises: 0013_events
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_webhooks"
down_revision = "0013_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("subscriber_id", sa.Integer),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("event_id", name="uq_webhook_events_event_id"),
    )
    op.create_index("ix_webhook_events_created_at", "webhook_events", ["created_at"])
    op.create_index("ix_webhook_events_subscriber", "webhook_events", ["subscriber_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hook", sa.String(100), nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("lease_until", sa.DateTime),
        sa.Column("last_code", sa.Integer),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("hook", "event_id", name="uq_webhook_deliveries_hook_event"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "webhook_hooks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("disabled_at", sa.DateTime),
        sa.Column("last_success_at", sa.DateTime),
        sa.Column("last_failure_at", sa.DateTime),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("hook", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )
    op.create_index("ix_webhook_attempts_at", "webhook_attempts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_at", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_hooks")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_events_subscriber", table_name="webhook_events")
    op.drop_index("ix_webhook_events_created_at", table_name="webhook_events")
    op.drop_table("webhook_events")
