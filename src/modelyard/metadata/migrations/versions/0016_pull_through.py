"""Pull-through cache (``services/proxy/``, issue #15).

- ``proxy_rules``: a compartment or repository prefix whose pulls fall through to an upstream
  OCI registry (its URL, the repository prefix there, credentials encrypted by
  ``services/secretbox.py``, TLS verification, and how long a cached tag is trusted).
- ``proxy_tags``: when each cached tag was last checked upstream, so a pull after the TTL
  revalidates it; a tag without a row here was pushed locally and is never revalidated. Keyed
  by repository name (not id): a row outliving its repository only makes the next pull of a
  same-named repository revalidate, which it does anyway.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_rules",
        sa.Column("id", sa.Integer),
        sa.Column("prefix", sa.String(255), nullable=False),
        sa.Column("upstream_url", sa.String(2048), nullable=False),
        sa.Column("upstream_prefix", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("secret_ciphertext", sa.Text),
        sa.Column("tls_verify", sa.Boolean, nullable=False),
        sa.Column("tag_ttl_seconds", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_proxy_rules"),
        sa.UniqueConstraint("prefix", name="uq_proxy_rules_prefix"),
    )
    op.create_table(
        "proxy_tags",
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("repository", "tag", name="pk_proxy_tags"),
    )


def downgrade() -> None:
    op.drop_table("proxy_tags")
    op.drop_table("proxy_rules")
