"""The control plane: compartments, registry configuration, repository settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Existing repositories are backfilled: a name with a ``/`` belongs to the compartment named by
its first component (created here), a single-component name to the root compartment.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _sortable(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "registry_config",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("create_repository_on_first_push", sa.Boolean, nullable=False),
        sa.Column("create_compartment_on_first_push", sa.Boolean, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_config"),
    )
    op.create_table(
        "compartments",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", _sortable(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("create_repository_on_first_push", sa.Boolean),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_compartments"),
        sa.UniqueConstraint("name", name="uq_compartments_name"),
    )
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("compartment_id", sa.Integer))
        batch.add_column(sa.Column("display_name", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("description", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("is_immutable", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("immutable_tag_patterns", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("mutable_tag_exclusions", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("readme_content", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("readme_format", sa.String(32), nullable=False, server_default="TEXT_MARKDOWN"))
        batch.add_column(sa.Column("labels", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("created_by", sa.String(255)))
        batch.add_column(sa.Column("lifecycle_state", sa.String(32), nullable=False, server_default="AVAILABLE"))
        batch.add_column(sa.Column("time_last_pushed", tz))
        batch.create_foreign_key(
            "fk_repositories_compartment_id_compartments",
            "compartments",
            ["compartment_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.create_index("ix_repositories_compartment_id", ["compartment_id"])

    conn = op.get_bind()
    now = datetime.now(UTC)
    repos = sa.table(
        "repositories", sa.column("id"), sa.column("name"), sa.column("compartment_id"), sa.column("display_name")
    )
    compartments = sa.table(
        "compartments",
        sa.column("id"),
        sa.column("name"),
        sa.column("description"),
        sa.column("created_at"),
        sa.column("updated_at"),
    )
    for repo_id, name in conn.execute(sa.select(repos.c.id, repos.c.name)).all():
        if "/" not in name:
            conn.execute(sa.update(repos).where(repos.c.id == repo_id).values(display_name=name))
            continue
        first, rest = name.split("/", 1)
        compartment_id = conn.execute(sa.select(compartments.c.id).where(compartments.c.name == first)).scalar()
        if compartment_id is None:
            compartment_id = conn.execute(
                sa.insert(compartments)
                .values(name=first, description="", created_at=now, updated_at=now)
                .returning(compartments.c.id)
            ).scalar_one()
        conn.execute(
            sa.update(repos).where(repos.c.id == repo_id).values(compartment_id=compartment_id, display_name=rest)
        )


def downgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.drop_index("ix_repositories_compartment_id")
        batch.drop_constraint("fk_repositories_compartment_id_compartments", type_="foreignkey")
        for column in (
            "compartment_id",
            "display_name",
            "description",
            "is_public",
            "is_immutable",
            "immutable_tag_patterns",
            "mutable_tag_exclusions",
            "readme_content",
            "readme_format",
            "labels",
            "created_by",
            "lifecycle_state",
            "time_last_pushed",
        ):
            batch.drop_column(column)
    op.drop_table("compartments")
    op.drop_table("registry_config")
