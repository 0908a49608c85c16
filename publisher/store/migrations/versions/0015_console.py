"""The operators' console: login sessions, failed-login counts, the TOTP replay guard.

``console_sessions`` holds one row per login: the SHA-256 of the session id (the cookie
holds the id; the table never does), the operator, whether the second factor is still due,
and when it expires. ``console_login_failures`` counts failed logins per client IP and per
operator address (hashed) so the limits hold across processes and hosts.
``operators.totp_last_step`` is the last TOTP time step accepted, so a code is used once.

Revision ID: 0015_console
Revises: 0012_monitoring
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_console"
down_revision = "0014_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("operator_email", sa.String(320), nullable=False),
        sa.Column("stage", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("ip", sa.String(45)),
        sa.UniqueConstraint("token_hash", name="uq_console_sessions_token_hash"),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "console_login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_console_login_failures_key_at", "console_login_failures", ["key", "at"])
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("totp_last_step")
    op.drop_index("ix_console_login_failures_key_at", table_name="console_login_failures")
    op.drop_table("console_login_failures")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
