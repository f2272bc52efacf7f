"""The model index: what the registry understood of each manifest (format, architecture,
parameters, precision, quantization, license, context length, sizes, the model card's first
lines, or why it could not read it) and the files of each version, for search and per-file
downloads (``services/models/``). Derived data: rows die with their manifest.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _sortable(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("repository_name", _sortable(255), nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("packaging", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("format", sa.String(64)),
        sa.Column("name", sa.String(255)),
        sa.Column("name_key", _sortable(255)),
        sa.Column("architecture", sa.String(128)),
        sa.Column("parameters", sa.BigInteger),
        sa.Column("precision", sa.String(128)),
        sa.Column("quantization", sa.String(64)),
        sa.Column("quant_bits", sa.Integer),
        sa.Column("license", sa.String(255)),
        sa.Column("context_length", sa.BigInteger),
        sa.Column("total_size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("card", sa.Text),
        sa.Column("details", sa.JSON),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"], ["manifests.id"], name="fk_model_versions_manifest_id_manifests", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_model_versions_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("manifest_id", name="uq_model_versions_manifest_id"),
    )
    for columns in (
        ("repository_id", "digest"),
        ("architecture", "id"),
        ("quantization", "id"),
        ("quant_bits", "id"),
        ("license", "id"),
        ("format", "id"),
        ("parameters", "id"),
        ("repository_name", "id"),
        ("name_key", "id"),
    ):
        op.create_index(f"ix_model_versions_{'_'.join(columns)}", "model_versions", list(columns))
    op.create_table(
        "model_files",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("path", _sortable(1024), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("layer_digest", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("layer_index", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("archive", sa.String(16), nullable=False),
        sa.Column("member_offset", sa.BigInteger),
        sa.Column("mode", sa.Integer),
        sa.ForeignKeyConstraint(
            ["version_id"], ["model_versions.id"], name="fk_model_files_version_id_model_versions", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_model_files"),
    )


def downgrade() -> None:
    op.drop_table("model_files")
    op.drop_table("model_versions")
