"""The subscribers' web side: pending sign-ups and the suppression list.

``signups`` holds the one open sign-up request of a subscriber (the digests, tags and name
they asked for, and the nonce their confirmation link carries); confirming applies it and
deletes the row, so a superseded link stops working. ``suppressions`` keeps only a
SHA-256 hash of each erased address, so an import cannot add it back.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signups",
        sa.Column(
            "subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True
        ),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("digests", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_table("signups")
