"""Retention, quotas, last-pulled times and maintenance run records (``services/lifecycle/``).

- ``retention_policies`` and ``quotas``: one row per repository or compartment (exactly one of
  the two ids is set); they die with what they belong to, so a repository created later under
  the same name starts without them.
- ``manifests.last_pulled_at``: written in batches from memory (``services/lifecycle/pulls.py``),
  never once per GET; retention keeps what was pulled recently.
- ``maintenance_runs``: one row per gc or retention run (scheduled, API or CLI) with what it
  removed and the bytes it freed.
- an index on ``repository_blobs.digest``: usage counting asks who else links a blob.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _owned(table: str, *columns: sa.Column[object]) -> None:
    """A table whose row belongs to exactly one repository or one compartment, with the
    constraint names ``tables.py``'s naming convention gives."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer),
        sa.Column("repository_id", sa.Integer),
        sa.Column("compartment_id", sa.Integer),
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(
            ["repository_id"], ["repositories.id"], name=f"fk_{table}_repository_id_repositories", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["compartment_id"], ["compartments.id"], name=f"fk_{table}_compartment_id_compartments", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("repository_id", name=f"uq_{table}_repository_id"),
        sa.UniqueConstraint("compartment_id", name=f"uq_{table}_compartment_id"),
    )


def upgrade() -> None:
    _owned(
        "retention_policies",
        sa.Column("keep_last", sa.Integer),
        sa.Column("keep_days", sa.Float),
        sa.Column("keep_tags", sa.JSON, nullable=False),
        sa.Column("alias_window_days", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255)),
    )
    _owned(
        "quotas",
        sa.Column("limit_bytes", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255)),
    )
    op.create_table(
        "maintenance_runs",
        sa.Column("id", sa.Integer),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(300)),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
        sa.Column("freed_bytes", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance_runs"),
    )
    op.create_index("ix_maintenance_runs_kind_id", "maintenance_runs", ["kind", "id"])
    with op.batch_alter_table("manifests") as batch:
        batch.add_column(sa.Column("last_pulled_at", sa.DateTime(timezone=True)))
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_repository_blobs_digest", "repository_blobs")
    with op.batch_alter_table("manifests") as batch:
        batch.drop_column("last_pulled_at")
    op.drop_index("ix_maintenance_runs_kind_id", "maintenance_runs")
    op.drop_table("maintenance_runs")
    op.drop_table("quotas")
    op.drop_table("retention_policies")
