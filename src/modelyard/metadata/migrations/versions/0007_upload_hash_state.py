"""An upload session keeps the SHA-256 state at its acknowledged offset, so any worker or
replica continues the hash without reading the acknowledged bytes back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("hash_state", sa.LargeBinary))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("hash_state")
