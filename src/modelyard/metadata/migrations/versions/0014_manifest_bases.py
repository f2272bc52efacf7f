"""The lineage index: ``manifest_bases``, one row per manifest that declares the version it was
derived from (the OCI ``org.opencontainers.image.base.name``/``.base.digest`` annotations, which
``modelyard push --base`` writes), with the base's repository path as this registry names it,
so that "what derives from X" is one indexed lookup (``services/models/lineage.py``). Subject
links need nothing new: ``manifests.subject_digest`` is indexed already. Rows die with their
manifest; manifests stored before this migration are read here and indexed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The rules of ``domain/lineage.py`` as they were when this migration was written.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def _base(repository: str, annotations: Any) -> dict[str, Any] | None:
    if isinstance(annotations, str | bytes):
        annotations = json.loads(annotations)
    if not isinstance(annotations, dict):
        return None
    digest = str(annotations.get("org.opencontainers.image.base.digest") or "").strip()
    if not digest or len(digest) > 200 or not _DIGEST.fullmatch(digest):
        return None
    raw = annotations.get("org.opencontainers.image.base.name")
    name = str(raw).strip()[:512] if raw and str(raw).strip() else None
    if name is None:
        return {"base_repository": repository, "base_digest": digest, "base_name": None}
    components = name.split("@", 1)[0].split("/")
    first = components[0]
    if len(components) > 1 and _HOST.fullmatch(first) and ("." in first or ":" in first or first == "localhost"):
        components = components[1:]
    if components and ":" in components[-1]:
        components[-1] = components[-1].split(":", 1)[0]
    path = "/".join(components)
    if not path or len(path) > 255 or not _NAME.fullmatch(path):
        return None
    return {"base_repository": path, "base_digest": digest, "base_name": name}


def upgrade() -> None:
    op.create_table(
        "manifest_bases",
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("base_repository", sa.String(255), nullable=False),
        sa.Column("base_digest", sa.String(200), nullable=False),
        sa.Column("base_name", sa.String(512)),
        sa.ForeignKeyConstraint(
            ["manifest_id"], ["manifests.id"], name="fk_manifest_bases_manifest_id_manifests", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("manifest_id", name="pk_manifest_bases"),
    )
    op.create_index(
        "ix_manifest_bases_base_digest_base_repository", "manifest_bases", ["base_digest", "base_repository"]
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT m.id, r.name, m.annotations FROM manifests m JOIN repositories r ON r.id = m.repository_id "
            "WHERE m.annotations IS NOT NULL"
        )
    )
    found = []
    for manifest_id, repository, notes in rows:
        try:
            base = _base(repository, notes)
        except ValueError:
            continue
        if base is not None:
            found.append({"manifest_id": manifest_id, **base})
    if found:
        table = sa.table(
            "manifest_bases",
            sa.column("manifest_id"),
            sa.column("base_repository"),
            sa.column("base_digest"),
            sa.column("base_name"),
        )
        op.bulk_insert(table, found)


def downgrade() -> None:
    op.drop_table("manifest_bases")
