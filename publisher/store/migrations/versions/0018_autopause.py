"""Auto-pause and retention: why an issue stopped itself, and the counts purge keeps.

``issue_autopauses`` holds one row per issue that paused itself on a bad hard-bounce or
complaint rate (the rate, threshold, reason, and both rates at the pause so a resumed issue
is paused again only if they get worse). ``issue_totals`` holds the per-issue delivery
counts that ``publisher purge`` rolls up before it deletes a finished issue's delivery rows.

Revision ID: 0018_autopause
Revises: 0017_provider_events
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_autopause"
down_revision = "0017_provider_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issue_autopauses",
        sa.Column("issue_id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("final", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("bounce_seen", sa.Float, nullable=False),
        sa.Column("complaint_seen", sa.Float, nullable=False),
        sa.Column("paused_at", sa.DateTime, nullable=False),
        sa.Column("resumed_at", sa.DateTime),
    )
    op.create_table(
        "issue_totals",
        sa.Column("issue_id", sa.Integer, primary_key=True),
        sa.Column("sent", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("bounced", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("hard", sa.Integer, nullable=False),
        sa.Column("rolled_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("issue_totals")
    op.drop_table("issue_autopauses")
