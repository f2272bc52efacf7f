"""The SQLAlchemy 2.0 schema, shared by SQLite and PostgreSQL.

Names and tags sort with the ``C`` collation on PostgreSQL so that pagination (``last``)
orders the same way on both backends, whatever the database's locale.
Tags are history (as in Quay): a row is one lifetime of a tag; the current one has
``lifetime_end IS NULL``, which a partial unique index keeps to one per tag.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeEngine


def sortable_string(length: int) -> TypeEngine[str]:
    """A string that compares bytewise on every backend."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

registry_config = Table(
    "registry_config",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("create_repository_on_first_push", Boolean, nullable=False),
    Column("create_compartment_on_first_push", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

compartments = Table(
    "compartments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", sortable_string(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    # NULL: inherit the registry-level default.
    Column("create_repository_on_first_push", Boolean),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", sortable_string(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # NULL compartment: the root compartment (single-component names).
    Column("compartment_id", Integer, ForeignKey("compartments.id", ondelete="RESTRICT"), index=True),
    Column("display_name", String(255), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("is_public", Boolean, nullable=False, default=False),
    Column("is_immutable", Boolean, nullable=False, default=False),
    Column("immutable_tag_patterns", JSON, nullable=False, default=list),
    Column("mutable_tag_exclusions", JSON, nullable=False, default=list),
    Column("readme_content", Text, nullable=False, default=""),
    Column("readme_format", String(32), nullable=False, default="TEXT_MARKDOWN"),
    Column("labels", JSON, nullable=False, default=dict),
    Column("created_by", String(255)),
    Column("lifecycle_state", String(32), nullable=False, default="AVAILABLE"),
    Column("time_last_pushed", DateTime(timezone=True)),
    # Alias rules (migration 0010, ``services/aliases.py``): who may move which alias, and what a
    # manifest needs before an alias may point at it. NULL: none.
    Column("protected_aliases", JSON),
    Column("promotion_gates", JSON),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Bumped whenever an upload or mount links the blob again: garbage collection spares
    # blobs linked within its grace window, which a manifest push may be about to reference.
    Column("last_linked_at", DateTime(timezone=True)),
    # Set by garbage collection before it deletes the bytes: a condemned blob is not linked
    # anywhere, and a push of the same digest revives it (clearing this) under the row's lock.
    Column("condemned_at", DateTime(timezone=True)),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(200), ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Usage counting (migration 0013) asks who else links a blob.
    Index("ix_repository_blobs_digest", "digest"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The principal that opened the upload; only it may continue it.
    Column("owner", String(160)),
    # The verified digest, recorded just before the bytes move to their content address: a
    # commit cut short by a crash after the move is finished by the client's retried PUT.
    Column("committing_digest", String(200)),
    # The SHA-256 state at ``offset`` (storage/hashstate.py), so any worker or replica continues
    # the hash without reading the acknowledged bytes back.
    Column("hash_state", LargeBinary),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(200), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", String(200)),
    Column("annotations", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Written in batches from memory (migration 0013, ``services/lifecycle/pulls.py``), never once
    # per GET: retention keeps what was pulled recently, and minutes of lag do not matter to it.
    Column("last_pulled_at", DateTime(timezone=True)),
    UniqueConstraint("repository_id", "digest"),
    Index(None, "repository_id", "subject_digest"),
)

manifest_references = Table(
    "manifest_references",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(200), primary_key=True),
    Column("is_manifest", Integer, nullable=False),
    Index(None, "digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("name", sortable_string(128), nullable=False),
    Column("manifest_digest", String(200), nullable=False),
    Column("lifetime_start", DateTime(timezone=True), nullable=False),
    Column("lifetime_end", DateTime(timezone=True)),
    Index(None, "repository_id", "name"),
    Index(None, "repository_id", "manifest_digest"),
)

Index(
    "uq_tags_current",
    tags.c.repository_id,
    tags.c.name,
    unique=True,
    sqlite_where=tags.c.lifetime_end.is_(None),
    postgresql_where=tags.c.lifetime_end.is_(None),
)

# Every move of a tag, append-only (migration 0010): nothing updates or deletes a row but the
# deletion of the whole repository. ``to_digest`` NULL: the tag was deleted (or its manifest).
tag_history = Table(
    "tag_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("tag", sortable_string(128), nullable=False),
    Column("from_digest", String(200)),
    Column("to_digest", String(200)),
    Column("actor", String(255)),
    Column("at", DateTime(timezone=True), nullable=False),
    # push | api | rollback | retention | delete
    Column("how", String(16), nullable=False),
    Column("reason", Text),
    Index(None, "repository_id", "tag", "id"),
    Index(None, "repository_id", "tag", "at"),
)

# -- identity, IAM and audit (migration 0003) ---------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", sortable_string(128), nullable=False, unique=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", sortable_string(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", sortable_string(128), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    # "user:<name>" or "serviceAccount:<name>"
    Column("principal", String(160), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)

iam_policies = Table(
    "iam_policies",
    metadata,
    # "registry", "compartment:<name>" or "repository:<name>"
    Column("resource", String(300), primary_key=True),
    Column("bindings", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Failed-login counters, one row per bucket ("account:…", "address:…", "pair:…"): a fixed window
# that starts at the bucket's first failure. One row per bucket is what makes counting and
# checking one atomic upsert (services/identity.py explains the policy).
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("bucket", String(200), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False, index=True),
    Column("failures", Integer, nullable=False),
)

# The audit log and the event outbox in one: see ``domain/events.py`` for why one table.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("resource", String(300), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("client_ip", String(64), nullable=False),
    Column("detail", JSON),
    # The event outbox (migration 0008, ``domain/events.py``): the event's type and typed payload.
    Column("event_type", String(64)),
    Column("payload", JSON),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# -- the model index (migration 0009, ``services/models/``) -----------------------------------
# Derived data: one row per manifest of a repository with what extraction found, and its files.
# Rows die with their manifest (ON DELETE CASCADE) and can always be recomputed from it. The
# searchable facts are stored normalized (lowercase) and each has an index that ends in ``id``,
# so a filtered search walks one index in the order it pages in (newest first).

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("repository_name", sortable_string(255), nullable=False),
    Column("digest", String(200), nullable=False),
    Column("packaging", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("format", String(64)),
    Column("name", String(255)),
    Column("name_key", sortable_string(255)),
    Column("architecture", String(128)),
    Column("parameters", BigInteger),
    Column("precision", String(128)),
    Column("quantization", String(64)),
    Column("quant_bits", Integer),
    Column("license", String(255)),
    Column("context_length", BigInteger),
    Column("total_size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("card", Text),
    Column("details", JSON),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
    Index(None, "repository_id", "digest"),
    Index(None, "architecture", "id"),
    Index(None, "quantization", "id"),
    Index(None, "quant_bits", "id"),
    Index(None, "license", "id"),
    Index(None, "format", "id"),
    Index(None, "parameters", "id"),
    Index(None, "repository_name", "id"),
    Index(None, "name_key", "id"),
)

model_files = Table(
    "model_files",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", sortable_string(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("layer_digest", String(200), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("layer_index", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("archive", String(16), nullable=False),
    # Where the file's data starts in the uncompressed tar stream of its layer (tar members only).
    Column("member_offset", BigInteger),
    Column("mode", Integer),
)

# The tensors of each safetensors file of a version (migration 0011), in file order: byte ranges
# ``[start, end)`` are absolute within the file (the 8-byte length and the header included).
model_tensors = Table(
    "model_tensors",
    metadata,
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", sortable_string(1024), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("dtype", String(32), nullable=False),
    Column("shape", JSON, nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
)

# Webhooks (migration 0012, ``services/webhooks/``): subscriptions on a scope (``registry``,
# ``compartment:acme``, ``repository:acme/llm``); the secret is kept encrypted (``secretbox.py``).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(300), nullable=False, index=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("secret_ciphertext", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_by", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One delivery per subscription and outbox event (unique: re-reading the outbox is harmless);
# ``state``: pending, succeeded, failed (no tries left).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("resource", String(300), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("tries_left", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("webhook_id", "event_id"),
    Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
)

# The delivery log: every attempt of a delivery, with what the endpoint answered.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),
    Column("duration_ms", Float, nullable=False),
    Column("error", Text),
)

# Where each consumer of the event outbox is (the last ``audit_events.id`` it has handled).
outbox_cursors = Table(
    "outbox_cursors",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- retention, quotas and maintenance runs (migration 0013, ``services/lifecycle/``) ---------
# A policy or quota belongs to exactly one repository or one compartment and dies with it.


def _owner_columns() -> list[Column[int]]:
    return [
        Column("id", Integer, primary_key=True),
        Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), unique=True),
        Column("compartment_id", Integer, ForeignKey("compartments.id", ondelete="CASCADE"), unique=True),
    ]


retention_policies = Table(
    "retention_policies",
    metadata,
    *_owner_columns(),
    Column("keep_last", Integer),
    Column("keep_days", Float),
    Column("keep_tags", JSON, nullable=False),
    Column("alias_window_days", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255)),
)

quotas = Table(
    "quotas",
    metadata,
    *_owner_columns(),
    Column("limit_bytes", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255)),
)

# One row per gc or retention run: what it removed and the bytes it freed.
maintenance_runs = Table(
    "maintenance_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("scope", String(300)),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("removed", Integer, nullable=False),
    Column("freed_bytes", BigInteger, nullable=False),
    Column("detail", JSON),
    Column("error", Text),
    Index("ix_maintenance_runs_kind_id", "kind", "id"),
)

# The lineage index (migration 0014): the base each manifest declares (OCI base annotations),
# by the base's repository path here; "what derives from X" is a lookup on the index.
manifest_bases = Table(
    "manifest_bases",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("base_repository", String(255), nullable=False),
    Column("base_digest", String(200), nullable=False),
    Column("base_name", String(512)),
    Index("ix_manifest_bases_base_digest_base_repository", "base_digest", "base_repository"),
)

# -- push replication (migration 0015, ``services/replication/``) -----------------------------
# A target registry; its password or token is kept encrypted (``secretbox.py``).
replication_targets = Table(
    "replication_targets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("url", String(2048), nullable=False),
    Column("username", String(255)),
    Column("secret_ciphertext", Text),
    Column("tls_verify", Boolean, nullable=False),
    Column("ca_pem", Text),
    Column("created_by", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What goes to a target (glob patterns), when (on push, every ``interval_seconds``), and
# whether deletes follow.
replication_rules = Table(
    "replication_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("target_id", Integer, ForeignKey("replication_targets.id", ondelete="CASCADE"), nullable=False),
    Column("repositories", String(300), nullable=False),
    Column("tags", String(300), nullable=False),
    Column("destination_prefix", String(255), nullable=False),
    Column("on_push", Boolean, nullable=False),
    Column("interval_seconds", Integer),
    Column("mirror_deletes", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("last_scheduled_at", DateTime(timezone=True)),
    Column("created_by", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One record per run of a rule; ``status``: running, succeeded, failed.
replication_executions = Table(
    "replication_executions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule_id", Integer, ForeignKey("replication_rules.id", ondelete="CASCADE"), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("scope", String(600)),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("manifests_copied", Integer, nullable=False),
    Column("manifests_skipped", Integer, nullable=False),
    Column("blobs_copied", Integer, nullable=False),
    Column("blobs_mounted", Integer, nullable=False),
    Column("blobs_skipped", Integer, nullable=False),
    Column("tags_deleted", Integer, nullable=False),
    Column("bytes_copied", BigInteger, nullable=False),
    Column("error", Text),
    Index("ix_replication_executions_rule_id_id", "rule_id", "id"),
)

# On-push work, one row per rule and outbox event; ``state``: pending, done, failed.
replication_tasks = Table(
    "replication_tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule_id", Integer, ForeignKey("replication_rules.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("rule_id", "event_id"),
    Index("ix_replication_tasks_state_next_attempt_at", "state", "next_attempt_at"),
)

# -- pull-through cache (migration 0016, ``services/proxy/``) ---------------------------------
# A compartment or repository prefix proxied to an upstream registry; the password is encrypted.
proxy_rules = Table(
    "proxy_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("prefix", String(255), nullable=False, unique=True),
    Column("upstream_url", String(2048), nullable=False),
    Column("upstream_prefix", String(255), nullable=False),
    Column("username", String(255)),
    Column("secret_ciphertext", Text),
    Column("tls_verify", Boolean, nullable=False),
    Column("tag_ttl_seconds", Integer, nullable=False),
    Column("created_by", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# When a cached tag was last checked upstream (a locally pushed tag has no row).
proxy_tags = Table(
    "proxy_tags",
    metadata,
    Column("repository", String(255), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("digest", String(200), nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)
