"""Garbage collection condemns a blob before it deletes its bytes; an upload names the digest it
is committing, so a commit cut short by a crash can be finished.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("condemned_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("committing_digest", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("committing_digest")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("condemned_at")
