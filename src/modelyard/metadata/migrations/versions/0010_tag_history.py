"""Alias history and alias rules: ``tag_history`` is the append-only log of every tag move
(from-digest, to-digest, actor, time, how, reason), and repositories gain their protected aliases
and promotion gates (``services/aliases.py``). Tag lifetimes already recorded become history
entries (how ``push``, actor unknown; a lifetime that ended without a successor, ``delete``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _sortable(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    history = op.create_table(
        "tag_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer,
            sa.ForeignKey("repositories.id", ondelete="CASCADE", name="fk_tag_history_repository_id_repositories"),
            nullable=False,
        ),
        sa.Column("tag", _sortable(128), nullable=False),
        sa.Column("from_digest", sa.String(200)),
        sa.Column("to_digest", sa.String(200)),
        sa.Column("actor", sa.String(255)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_tag_history"),
    )
    op.create_index("ix_tag_history_repository_id_tag_id", "tag_history", ["repository_id", "tag", "id"])
    op.create_index("ix_tag_history_repository_id_tag_at", "tag_history", ["repository_id", "tag", "at"])
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("protected_aliases", sa.JSON))
        batch.add_column(sa.Column("promotion_gates", sa.JSON))
    _backfill(history)


def _backfill(history: sa.Table) -> None:
    """One entry per recorded lifetime start, and a ``delete`` entry for a lifetime that ended
    with no successor starting at that moment."""
    conn = op.get_bind()
    tags = sa.table(
        "tags",
        sa.column("id", sa.Integer),
        sa.column("repository_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("manifest_digest", sa.String),
        sa.column("lifetime_start", sa.DateTime(timezone=True)),
        sa.column("lifetime_end", sa.DateTime(timezone=True)),
    )
    rows = conn.execute(
        sa.select(tags).order_by(tags.c.repository_id, tags.c.name, tags.c.lifetime_start, tags.c.id)
    ).all()
    entries: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        before = rows[index - 1] if index else None
        after = rows[index + 1] if index + 1 < len(rows) else None
        if before is not None and (before.repository_id, before.name) != (row.repository_id, row.name):
            before = None
        if after is not None and (after.repository_id, after.name) != (row.repository_id, row.name):
            after = None
        moved_from = (
            before.manifest_digest if before is not None and before.lifetime_end == row.lifetime_start else None
        )
        entries.append(
            {"repository_id": row.repository_id, "tag": row.name, "from_digest": moved_from,
             "to_digest": row.manifest_digest, "actor": None, "at": row.lifetime_start, "how": "push", "reason": None}
        )  # fmt: skip
        if row.lifetime_end is not None and not (after is not None and after.lifetime_start == row.lifetime_end):
            entries.append(
                {"repository_id": row.repository_id, "tag": row.name, "from_digest": row.manifest_digest,
                 "to_digest": None, "actor": None, "at": row.lifetime_end, "how": "delete", "reason": None}
            )  # fmt: skip
    if entries:
        op.bulk_insert(history, entries)


def downgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.drop_column("promotion_gates")
        batch.drop_column("protected_aliases")
    op.drop_index("ix_tag_history_repository_id_tag_at", "tag_history")
    op.drop_index("ix_tag_history_repository_id_tag_id", "tag_history")
    op.drop_table("tag_history")
