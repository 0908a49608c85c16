"""Sending processes register themselves, and claims name the worker that holds them.

``workers`` has one row per live sending process (``send``, ``run``, ``worker``): its host
id, pid and process start time (so a reused pid is told apart), when it started, its last
heartbeat and, on PostgreSQL, the advisory-lock key its session holds while it lives.
``deliveries.worker_id`` names the worker holding a ``sending`` row: a claim of a worker
that is gone is taken over at once, and results are recorded only by the holder (fencing).

The claim index gains ``id`` so that "the oldest due rows of an issue" is an index range
read in order whatever the queue size; a partial index on ``worker_id`` over ``sending``
rows serves lease renewal, fencing and takeover without touching the queued rows.

Revision ID: 0009_workers
Revises: 0008_planning
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_workers"
down_revision = "0008_planning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("host_id", sa.String(200), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("process_start", sa.String(100)),
        sa.Column("command", sa.String(40), nullable=False),
        sa.Column("lock_key", sa.BigInteger),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        # AUTOINCREMENT on SQLite: a worker id is never handed out twice, so a dead
        # worker's claims and journal can never be mistaken for a new worker's.
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("worker_id", sa.Integer))
    op.drop_index("ix_deliveries_issue_status", table_name="deliveries")
    op.create_index(
        "ix_deliveries_claim", "deliveries", ["issue_id", "status", "next_attempt_at", "id"]
    )
    op.create_index(
        "ix_deliveries_worker_sending",
        "deliveries",
        ["worker_id"],
        sqlite_where=sa.text("status = 'sending'"),
        postgresql_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_worker_sending", table_name="deliveries")
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index(
        "ix_deliveries_issue_status", "deliveries", ["issue_id", "status", "next_attempt_at"]
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("worker_id")
    op.drop_table("workers")
