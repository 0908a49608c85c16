"""Suppressions carry a note beside their reason (``erased``, ``complaint``).

The suppression list (0005) held only erasures. Complaints about our mail now go there too,
and ``subscribers add`` / ``import`` refuse every suppressed address, naming the reason and
when it was recorded; the note says where it came from (the preferences page, an operator's
``subscribers remove --complaint`` ...).

Revision ID: 0010_suppressions
Revises: 0009_workers
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_suppressions"
down_revision = "0009_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(sa.Column("note", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("note")
