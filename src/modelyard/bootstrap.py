"""``build_registry(settings)``: the one place that picks concrete backends and wires services.

Everything that needs a working registry goes through it: ``create_app`` (HTTP on top), the
CLI's offline commands (``modelyard gc``, ``modelyard reset-admin``) and the background
workers. Backends are chosen by name from the settings; an unknown name is a start-up error
(``Settings`` only admits the names registered here), never a silent fallback.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.config import Settings
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from modelyard.metadata.sql_aliases import SqlAliases
from modelyard.metadata.sql_lifecycle import SqlLifecycle
from modelyard.metadata.sql_lineage import SqlLineageIndex
from modelyard.metadata.sql_models import SqlModelIndex
from modelyard.operations import build_operations, build_replication
from modelyard.services.aliases import AliasService
from modelyard.services.audit import AuditService
from modelyard.services.auth import AuthService
from modelyard.services.blobs import BlobService
from modelyard.services.compartments import CompartmentService
from modelyard.services.gc import GarbageCollector
from modelyard.services.hf import HubService
from modelyard.services.iam import IamService
from modelyard.services.identity import IdentityService
from modelyard.services.lifecycle import (
    Lifecycle,
    MaintenanceService,
    PullRecorder,
    QuotaService,
    RetentionService,
)
from modelyard.services.listing import ListingService
from modelyard.services.manifests import ManifestService
from modelyard.services.models import ModelService
from modelyard.services.models.diff import DiffService
from modelyard.services.models.lineage import LineageService, chained
from modelyard.services.registry import Registry
from modelyard.services.repositories import RepositoryService
from modelyard.services.runner import BlockingRunner, Reader
from modelyard.services.tokens import TokenService
from modelyard.services.uploads import UploadService
from modelyard.storage.base import BlobStore
from modelyard.storage.filesystem import FilesystemBlobStore
from modelyard.wiring import build_pull_through


def _filesystem_store(settings: Settings) -> BlobStore:
    return FilesystemBlobStore(settings.data_dir.resolve(), fsync=settings.fsync)


def _s3_store(settings: Settings) -> BlobStore:
    # Imported here: boto3 costs ~40 MiB and half a second to import, for registries on S3 only.
    from modelyard.storage.s3 import S3BlobStore, S3Options

    assert settings.s3_bucket is not None  # Settings refuses s3 without a bucket
    return S3BlobStore(
        S3Options(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            region=settings.s3_region,
            addressing_style=settings.s3_addressing_style,
            server_side_encryption=settings.s3_server_side_encryption,
            sse_kms_key_id=settings.s3_sse_kms_key_id,
            part_size=settings.s3_part_size,
            redirect=settings.blob_redirect,
            lease_seconds=settings.s3_upload_lease,
        )
    )


BLOB_STORES: dict[str, Callable[[Settings], BlobStore]] = {"filesystem": _filesystem_store, "s3": _s3_store}


def open_metadata(settings: Settings, *, migrate: bool = True) -> SqlMetadataStore:
    """The metadata store the settings name, migrated to the current schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_metadata_engine(settings.resolved_database_url)
    if migrate:
        # Imported here: serving workers never migrate, and alembic costs ~10 MiB of memory each.
        from modelyard.metadata.migrations import upgrade

        upgrade(engine)
    return SqlMetadataStore(engine)


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name."""
    try:
        factory = BLOB_STORES[settings.storage_backend]
    except KeyError:
        raise ValueError(
            f"unknown storage_backend {settings.storage_backend!r}: use one of {sorted(BLOB_STORES)}"
        ) from None
    return factory(settings)


@dataclass(frozen=True, slots=True)
class Runtime:
    """A wired registry and what it holds open; :meth:`close` releases it all."""

    settings: Settings
    registry: Registry
    metadata: SqlMetadataStore
    store: BlobStore
    runner: BlockingRunner

    def close(self) -> None:
        self.registry.identity.close()
        self.runner.shutdown()
        self.metadata.close()


def build_registry(settings: Settings, *, migrate: bool = True) -> Runtime:
    metadata = open_metadata(settings, migrate=migrate)
    store = open_blob_store(settings)
    runner = BlockingRunner()
    compartments = CompartmentService(metadata, runner)
    repositories = RepositoryService(metadata, compartments, runner)
    secret = (
        settings.token_secret.get_secret_value()
        if settings.token_secret
        else metadata.secrets.get_or_create("token-hmac", secrets.token_urlsafe(48))
    )
    tokens = TokenService(secret.encode(), settings.token_service, settings.token_ttl, settings.refresh_token_ttl)
    identity = IdentityService(metadata, runner, settings)
    iam = IamService(metadata, runner)
    audit = AuditService(metadata, runner)
    models = ModelService(metadata, SqlModelIndex(metadata), store, runner)
    lineage = LineageService(metadata, SqlLineageIndex(metadata), models, runner)
    aliases = AliasService(metadata, SqlAliases(metadata), iam, runner, identity.principal_for)
    lifecycle_store = SqlLifecycle(metadata)
    gc = GarbageCollector(metadata, store)
    quotas = QuotaService(lifecycle_store, runner, audit, read=Reader(runner, inline=metadata.reads_inline))
    lifecycle = Lifecycle(
        retention=RetentionService(metadata, lifecycle_store, runner),
        quotas=quotas,
        pulls=PullRecorder(lifecycle_store, runner, interval=settings.pull_flush_interval),
        maintenance=MaintenanceService(lifecycle_store, gc),
    )
    operations = build_operations(settings, metadata, store, models, runner)
    blobs = BlobService(metadata, store, runner, redirect_ttl=settings.blob_redirect_ttl)
    replication = build_replication(settings, metadata, blobs, runner)
    uploads = UploadService(metadata, store, runner, repositories, quotas=quotas)
    manifests = ManifestService(
        metadata,
        runner,
        repositories,
        max_bytes=settings.manifest_max_bytes,
        after_put=chained(models.index, lineage.record),
        tag_rules=aliases,
        quotas=quotas,
    )
    registry = Registry(
        settings=settings,
        read=Reader(runner, inline=metadata.reads_inline),
        uploads=uploads,
        blobs=blobs,
        manifests=manifests,
        listing=ListingService(metadata),
        compartments=compartments,
        repositories=repositories,
        identity=identity,
        iam=iam,
        hub=HubService(metadata, models, iam, store, Reader(runner, inline=metadata.reads_inline), settings),
        tokens=tokens,
        auth=AuthService(identity, iam, tokens, audit),
        audit=audit,
        webhooks=operations.webhooks,
        webhook_delivery=operations.webhook_delivery,
        health=operations.health,
        gc=gc,
        lifecycle=lifecycle,
        models=models,
        lineage=lineage,
        diffs=DiffService(metadata, models, runner),
        aliases=aliases,
        proxy=build_pull_through(settings, metadata, manifests, blobs, uploads, runner, models),
        replication=replication.service,
        replication_worker=replication,
    )
    return Runtime(settings, registry, metadata, store, runner)
