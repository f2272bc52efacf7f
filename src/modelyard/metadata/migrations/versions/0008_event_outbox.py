"""The audit log becomes the event outbox: each row also keeps the event's type name and its
typed payload, written in the transaction of the change it describes (``domain/events.py``).
Rows from before have neither (``NULL``): they stay in the audit log, no consumer replays them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("event_type", sa.String(64)))
        batch.add_column(sa.Column("payload", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("payload")
        batch.drop_column("event_type")
