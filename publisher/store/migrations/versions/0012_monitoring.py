"""An index on the send time of sent deliveries, for monitoring.

``/metrics`` and ``status --json`` count the messages sent in the last minute and the last
five minutes at every scrape. Without an index that is a scan of the whole ledger; with a
partial index over ``sent`` rows it is a short range read. Only rows that become ``sent``
enter it, so queueing and claiming pay nothing for it.

Revision ID: 0012_monitoring
Revises: 0011_operators
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_monitoring"
down_revision = "0011_operators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_sent_at",
        "deliveries",
        ["sent_at"],
        sqlite_where=sa.text("status = 'sent'"),
        postgresql_where=sa.text("status = 'sent'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_sent_at", table_name="deliveries")
