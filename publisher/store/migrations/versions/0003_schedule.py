"""Per-subscriber cadence: subscription cursors and roll-up issues.

``subscriptions.cursor_issue_id`` is the newest regular issue whose articles a ``daily`` or
``weekly`` subscriber has been sent (in a roll-up); ``subscriptions.cadence_key`` the
cadence period of their last roll-up. ``issues.cadence`` is ``every`` for a digest's
regular issues and the frequency (``daily``, ``weekly``) of a roll-up issue.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("cursor_issue_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cadence_key", sa.String(40), nullable=True))
    with op.batch_alter_table("issues") as batch:
        batch.add_column(
            sa.Column("cadence", sa.String(20), nullable=False, server_default="every")
        )


def downgrade() -> None:
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("cadence")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("cadence_key")
        batch.drop_column("cursor_issue_id")
