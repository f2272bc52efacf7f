"""The registry core: repositories, blobs and links, uploads, manifests, tag history.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _sortable(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", _sortable(255), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repositories"),
        sa.UniqueConstraint("name", name="uq_repositories_name"),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_blobs"),
    )
    op.create_table(
        "repository_blobs",
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_repository_blobs"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            ondelete="CASCADE",
            name="fk_repository_blobs_repository_id_repositories",
        ),
        sa.ForeignKeyConstraint(["digest"], ["blobs.digest"], name="fk_repository_blobs_digest_blobs"),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], ondelete="CASCADE", name="fk_uploads_repository_id_repositories"
        ),
    )
    op.create_table(
        "manifests",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("artifact_type", sa.String(255)),
        sa.Column("subject_digest", sa.String(200)),
        sa.Column("annotations", sa.JSON),
        sa.Column("created_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manifests"),
        sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_id_digest"),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], ondelete="CASCADE", name="fk_manifests_repository_id_repositories"
        ),
    )
    op.create_index("ix_manifests_repository_id_subject_digest", "manifests", ["repository_id", "subject_digest"])
    op.create_table(
        "manifest_references",
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("is_manifest", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("manifest_id", "digest", name="pk_manifest_references"),
        sa.ForeignKeyConstraint(
            ["manifest_id"], ["manifests.id"], ondelete="CASCADE", name="fk_manifest_references_manifest_id_manifests"
        ),
    )
    op.create_index("ix_manifest_references_digest", "manifest_references", ["digest"])
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("name", _sortable(128), nullable=False),
        sa.Column("manifest_digest", sa.String(200), nullable=False),
        sa.Column("lifetime_start", tz, nullable=False),
        sa.Column("lifetime_end", tz),
        sa.PrimaryKeyConstraint("id", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], ondelete="CASCADE", name="fk_tags_repository_id_repositories"
        ),
    )
    op.create_index("ix_tags_repository_id_name", "tags", ["repository_id", "name"])
    op.create_index("ix_tags_repository_id_manifest_digest", "tags", ["repository_id", "manifest_digest"])
    op.create_index(
        "uq_tags_current",
        "tags",
        ["repository_id", "name"],
        unique=True,
        sqlite_where=sa.text("lifetime_end IS NULL"),
        postgresql_where=sa.text("lifetime_end IS NULL"),
    )


def downgrade() -> None:
    for table in ("tags", "manifest_references", "manifests", "uploads", "repository_blobs", "blobs", "repositories"):
        op.drop_table(table)
