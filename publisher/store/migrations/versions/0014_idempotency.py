"""The HTTP API's idempotency keys, and an index for the subscriber directory's pages.

``idempotency_keys`` keeps, per API token and key, the first response to a POST sent with
an ``Idempotency-Key`` header for 24 hours, so that a client retrying after a timeout gets
that response again instead of a second send or a second subscriber.

``ix_subscribers_status_id`` makes the keyset pages of the subscriber search (newest first,
optionally of one status, below a given id) a range read on a list of any size.

Revision ID: 0014_idempotency
Revises: 0012_monitoring
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_idempotency"
down_revision = "0014_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("token_id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("headers", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_index("ix_subscribers_status_id", "subscribers", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_subscribers_status_id", table_name="subscribers")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
