"""Failed logins become counters (one row per account, address and account+address bucket), so
the throttle counts and checks an attempt in one atomic upsert instead of reading a log of
failures and appending to it afterwards.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_window_start", "login_attempts", ["window_start"])
    # Failures of the old table are at most one window old: starting from zero forgets a few
    # minutes of counts, once.
    op.drop_index("ix_login_failures_client_ip_time", table_name="login_failures")
    op.drop_index("ix_login_failures_account_time", table_name="login_failures")
    op.drop_table("login_failures")


def downgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("account", sa.String(255), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("time", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_account_time", "login_failures", ["account", "time"])
    op.create_index("ix_login_failures_client_ip_time", "login_failures", ["client_ip", "time"])
    op.drop_index("ix_login_attempts_window_start", table_name="login_attempts")
    op.drop_table("login_attempts")
