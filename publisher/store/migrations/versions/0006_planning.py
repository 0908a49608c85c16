"""A cancelled issue can give its articles back: ``issues.released_at``.

When an operator cancels an issue, its articles go into the digest's next issue unless
they pass ``--drop-articles``. ``released_at`` records when they were given back; an issue
whose articles are released no longer counts as holding them. Issues cancelled before
this migration keep their articles (NULL), as they did.

Revision ID: 0006_planning
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_planning"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("released_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("released_at")
