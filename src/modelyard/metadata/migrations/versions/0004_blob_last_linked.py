"""Blobs remember when they were last linked, so garbage collection spares recent ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("last_linked_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE blobs SET last_linked_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("last_linked_at")
