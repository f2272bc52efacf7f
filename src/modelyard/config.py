"""One typed :class:`Settings` model, read from defaults, a TOML file, ``MODELYARD_*`` env vars
and command-line flags (each overriding the one before), and validated at start.

A bad setting stops the server with a one-line message naming the setting; see
:func:`format_validation_error`.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelyard.storage.paths import sqlite_path

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of the registry (see the README's configuration reference)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(5000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    data_dir: Path = Field(Path("./modelyard-data"), description="Where blobs, uploads and SQLite live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database; default SQLite in the data dir."
    )
    public_host: str | None = Field(
        None,
        description="host[:port] clients use to reach the registry (repository URLs, the token realm); "
        "default: the Host header. Set it behind a proxy.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For/-Proto are believed "
        "(e.g. ['10.0.0.5', '127.0.0.1/32']); empty: the TCP peer is the client.",
    )
    storage_backend: Literal["filesystem", "s3"] = Field(
        "filesystem", description="Where blob bytes live: the data dir, or an S3-compatible bucket (s3_*)."
    )
    s3_bucket: str | None = Field(None, description="Bucket of the s3 storage backend (required with it).")
    s3_prefix: str = Field(
        "", description="Key prefix inside the bucket, e.g. 'modelyard/' (several registries can share a bucket)."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint (MinIO, Ceph RGW, R2, ...); default: AWS for s3_region."
    )
    s3_public_endpoint_url: str | None = Field(
        None, description="Endpoint used in redirect URLs handed to clients, if they reach S3 by another address."
    )
    s3_region: str | None = Field(None, description="Region of the bucket; default: the AWS config chain's.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="Bucket in the path (MinIO, Ceph) or in the host name (AWS virtual-hosted style)."
    )
    s3_server_side_encryption: Literal["AES256", "aws:kms"] | None = Field(
        None, description="Ask S3 to encrypt stored objects (SSE-S3 'AES256' or SSE-KMS 'aws:kms')."
    )
    s3_sse_kms_key_id: str | None = Field(None, description="KMS key for s3_server_side_encryption = 'aws:kms'.")
    s3_part_size: int = Field(
        8 * MiB,
        ge=5 * MiB,
        le=5 * 1024 * MiB,
        description="Multipart part size to start with (doubles every 500 parts); memory per upload is about this.",
    )
    s3_upload_lease: float = Field(
        30.0,
        ge=2.0,
        le=3600.0,
        description="Seconds an S3 upload stays locked to a writer that stopped renewing (a killed replica): "
        "its client's retry waits this long; shorter risks taking over from a writer that is only slow.",
    )
    blob_redirect: bool = Field(
        True,
        description="Object stores: answer blob GETs with 307 to a short-lived presigned URL (false: stream through).",
    )
    blob_redirect_ttl: int = Field(1200, ge=10, le=7 * 86400, description="Lifetime of a blob redirect URL, seconds.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the port (SO_REUSEPORT).")
    tls_cert: Path | None = Field(None, description="PEM certificate; serve HTTPS when set with tls_key.")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")
    manifest_max_bytes: int = Field(4 * MiB, ge=1024, description="Largest manifest accepted.")
    chunk_min_length: int = Field(0, ge=0, description="OCI-Chunk-Min-Length advertised for chunked uploads.")
    upload_idle_timeout: float = Field(300.0, gt=0, description="Seconds an upload body may stall.")
    upload_direct_min_bytes: int = Field(
        4 * MiB,
        ge=0,
        description="Plain-HTTP upload bodies with a Content-Length of at least this many bytes are read straight "
        "from the socket by a transfer thread, and their connection closes after the response (0: never).",
    )
    blob_send_threads: int = Field(
        16,
        ge=0,
        le=1024,
        description="Blob downloads from local files copied to the socket by a thread at once, per worker; more are "
        "sent with sendfile on the event loop (0: always sendfile). Copying is faster over loopback and to a proxy "
        "on the same host; sendfile spares the copy through a network card.",
    )
    blob_send_idle_timeout: float = Field(
        300.0, gt=0, description="Seconds a download copied by a thread may wait for the client to read."
    )
    fsync: bool = Field(True, description="fsync blobs and metadata before acknowledging them.")
    delete_enabled: bool = Field(True, description="Allow DELETE of blobs and manifests on /v2.")
    auth_enabled: bool = Field(
        True, description="Require tokens on /v2 and credentials on /api/v1 (turn off only on a trusted network)."
    )
    admin_password: pydantic.SecretStr | None = Field(
        None, description="Password of the first administrator 'admin'; generated and printed once if unset."
    )
    token_service: str = Field("modelyard", description="The 'service' of the token-auth challenge and tokens.")
    token_ttl: int = Field(300, ge=30, le=86400, description="Lifetime of /v2 access tokens, seconds.")
    refresh_token_ttl: int = Field(30 * 86400, ge=300, description="Lifetime of refresh (offline) tokens, seconds.")
    token_secret: pydantic.SecretStr | None = Field(
        None, description="HMAC key for tokens; default: generated once and kept in the metadata database."
    )
    login_failures_per_account: int = Field(10, ge=1, description="Failed logins per account per window.")
    login_failures_per_address: int = Field(50, ge=1, description="Failed logins per client address per window.")
    login_failure_window: int = Field(900, ge=10, description="The failed-login window, seconds.")
    password_hash_concurrency: int = Field(
        2, ge=1, le=64, description="Password checks (argon2, 7 MiB each) run at once per worker."
    )
    password_hash_queue: int = Field(
        16, ge=0, description="Password checks that may wait for one; beyond that a login gets 429 at once."
    )
    credential_cache_ttl: int = Field(
        60, ge=0, le=3600, description="Seconds a successful password check is remembered (0: never)."
    )
    background_jobs: bool = Field(
        True, description="Run scheduled work (gc, ...) in this server; one worker or replica leads at a time."
    )
    gc_interval: float = Field(
        86400.0,
        ge=0,
        description="Seconds between scheduled garbage collections (0: never; `modelyard gc` still works).",
    )
    gc_grace_period: float = Field(
        3600.0, ge=0, description="Scheduled gc spares anything touched more recently than this, seconds."
    )
    retention_interval: float = Field(
        86400.0, ge=0, description="Seconds between scheduled retention runs over every policy (0: never)."
    )
    pull_flush_interval: float = Field(
        60.0, ge=0, description="Seconds between batched writes of last-pulled times (0: only at shutdown)."
    )
    upload_ttl: float = Field(7 * 86400.0, gt=0, description="Seconds after which an idle upload session expires.")
    leader_poll_interval: float = Field(
        5.0, gt=0, le=300, description="How often a follower tries to take over scheduled work, seconds."
    )
    hf_default_revision: str = Field(
        "latest",
        max_length=128,
        description="The tag the Hugging Face API serves for revision 'main' (the client's default) when a "
        "repository has no tag 'main'; without either, the newest version.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(True, description="Log one line per request.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Server log lines as text, or one JSON object per line (for log collectors)."
    )
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics on /metrics.")
    secret_key: pydantic.SecretStr | None = Field(
        None,
        description="Base64 of 32 bytes encrypting stored secrets (webhook secrets); default: generated once into "
        "DATA_DIR/secret.key. Replicas with separate data directories must share one.",
    )
    webhook_timeout: float = Field(10.0, gt=0, le=300, description="Seconds a webhook endpoint may take to answer.")
    webhook_max_attempts: int = Field(8, ge=1, le=100, description="Tries per webhook delivery before it fails.")
    webhook_retry_base: float = Field(
        10.0, gt=0, description="Seconds before the first retry of a webhook delivery; doubles on each further one."
    )
    webhook_retry_max: float = Field(3600.0, gt=0, description="Longest wait between two tries of a delivery, seconds.")
    webhook_concurrency: int = Field(8, ge=1, le=256, description="Webhook deliveries in flight at once (leader only).")
    webhook_poll_interval: float = Field(
        1.0, gt=0, le=60, description="How often the leader looks for new events and due deliveries, seconds."
    )
    replication_poll_interval: float = Field(
        2.0, gt=0, le=300, description="How often the leader looks for pushes to replicate and due scheduled rules, s."
    )
    replication_retry_base: float = Field(
        30.0, gt=0, description="Seconds before an on-push replication that failed is tried again; doubles each time."
    )
    replication_retry_max: float = Field(3600.0, gt=0, description="Longest wait between two tries of a replication.")
    replication_max_attempts: int = Field(20, ge=1, le=1000, description="Tries of an on-push replication task.")
    replication_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds a replication target may take to answer one request (or a chunk)."
    )
    replication_chunk_size: int = Field(
        64 << 20, ge=1 << 20, description="Blobs larger than this go to a target in PATCH chunks of this size, bytes."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        if self.database_url is not None and not self.database_url.startswith(("sqlite", "postgres")):
            raise ValueError("database_url must start with sqlite:// or postgresql://")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("storage_backend 's3' needs the setting s3_bucket")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an IP address or network") from None
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{sqlite_path(self.data_dir.resolve())}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < TOML ``config_file`` < ``MODELYARD_*`` env vars < ``overrides`` (CLI flags)."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            file_values = tomllib.loads(config_file.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {config_file} is not valid TOML: {exc}") from None
    from_env = Settings()
    env_values = from_env.model_dump(include=from_env.model_fields_set)
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**{**file_values, **env_values, **given})


def format_validation_error(exc: pydantic.ValidationError) -> str:
    """One line per problem: ``invalid setting 'port': Input should be ...``."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        lines.append(f"invalid setting {field!r}: {err['msg']}")
    return "; ".join(lines)
