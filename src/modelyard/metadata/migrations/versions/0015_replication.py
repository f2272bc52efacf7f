"""Push replication (``services/replication/``, issue #15).

- ``replication_targets``: another registry (modelyard or any OCI registry) by URL, with its
  credentials encrypted by ``services/secretbox.py`` and its TLS options (verify, a CA bundle).
- ``replication_rules``: what to copy to a target (repository and tag glob patterns), when
  (on push from the event outbox, and/or every ``interval_seconds``), whether deletes are
  mirrored, and a prefix for the repository names on the target.
- ``replication_tasks``: the durable work list of on-push replication, one row per rule and
  outbox event (unique, so re-reading the outbox never queues twice); a failed task is retried
  with back-off, which is how replication resumes after a target went away.
- ``replication_executions``: one record per run of a rule (what, how many bytes, how long,
  errors), read by the admin API and ``modelyard replication executions``.

The revision ids follow this directory's style (``"0014"``, not the file name).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replication_targets",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("secret_ciphertext", sa.Text),
        sa.Column("tls_verify", sa.Boolean, nullable=False),
        sa.Column("ca_pem", sa.Text),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replication_targets"),
        sa.UniqueConstraint("name", name="uq_replication_targets_name"),
    )
    op.create_table(
        "replication_rules",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("repositories", sa.String(300), nullable=False),
        sa.Column("tags", sa.String(300), nullable=False),
        sa.Column("destination_prefix", sa.String(255), nullable=False),
        sa.Column("on_push", sa.Boolean, nullable=False),
        sa.Column("interval_seconds", sa.Integer),
        sa.Column("mirror_deletes", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("last_scheduled_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replication_rules"),
        sa.UniqueConstraint("name", name="uq_replication_rules_name"),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["replication_targets.id"],
            name="fk_replication_rules_target_id_replication_targets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "replication_executions",
        sa.Column("id", sa.Integer),
        sa.Column("rule_id", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(600)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("manifests_copied", sa.Integer, nullable=False),
        sa.Column("manifests_skipped", sa.Integer, nullable=False),
        sa.Column("blobs_copied", sa.Integer, nullable=False),
        sa.Column("blobs_mounted", sa.Integer, nullable=False),
        sa.Column("blobs_skipped", sa.Integer, nullable=False),
        sa.Column("tags_deleted", sa.Integer, nullable=False),
        sa.Column("bytes_copied", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_replication_executions"),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["replication_rules.id"],
            name="fk_replication_executions_rule_id_replication_rules",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_replication_executions_rule_id_id", "replication_executions", ["rule_id", "id"])
    op.create_table(
        "replication_tasks",
        sa.Column("id", sa.Integer),
        sa.Column("rule_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replication_tasks"),
        sa.UniqueConstraint("rule_id", "event_id", name="uq_replication_tasks_rule_id_event_id"),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["replication_rules.id"],
            name="fk_replication_tasks_rule_id_replication_rules",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_replication_tasks_state_next_attempt_at", "replication_tasks", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_replication_tasks_state_next_attempt_at", "replication_tasks")
    op.drop_table("replication_tasks")
    op.drop_index("ix_replication_executions_rule_id_id", "replication_executions")
    op.drop_table("replication_executions")
    op.drop_table("replication_rules")
    op.drop_table("replication_targets")
