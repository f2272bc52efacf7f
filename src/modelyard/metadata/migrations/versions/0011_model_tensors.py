"""The tensor index of safetensors files: each tensor's name, dtype, shape and byte range
(absolute within its file), read from the header at push time (``services/models/``), so one
tensor of a 70 GB checkpoint is a ranged read. Derived data: rows die with their version.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _sortable(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "model_tensors",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("path", _sortable(1024), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("dtype", sa.String(32), nullable=False),
        sa.Column("shape", sa.JSON, nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name="fk_model_tensors_version_id_model_versions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", "path", "position", name="pk_model_tensors"),
    )


def downgrade() -> None:
    op.drop_table("model_tensors")
