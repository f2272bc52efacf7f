"""``create_app(settings)``: the one place that picks concrete backends and wires them.

There are no module-level singletons: everything a request needs hangs off the
``web.Application`` built here, so tests build as many independent registries as they like.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from modelyard.api import admin, auth, oci
from modelyard.api.context import REGISTRY
from modelyard.api.errors import error_middleware
from modelyard.config import Settings
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from modelyard.services.audit import AuditService
from modelyard.services.blobs import BlobService
from modelyard.services.compartments import CompartmentService
from modelyard.services.iam import IamService
from modelyard.services.identity import IdentityService
from modelyard.services.listing import ListingService
from modelyard.services.manifests import ManifestService
from modelyard.services.registry import Registry
from modelyard.services.repositories import RepositoryService
from modelyard.services.runner import BlockingRunner
from modelyard.services.tokens import TokenService
from modelyard.services.uploads import UploadService
from modelyard.storage.filesystem import FilesystemBlobStore

READ_BUFFER_BYTES = 1024 * 1024
# Only admin JSON bodies are read whole; /v2 bodies stream and never hit this limit.
ADMIN_BODY_MAX_BYTES = 4 * 1024 * 1024


def open_metadata(settings: Settings, *, migrate: bool = True) -> SqlMetadataStore:
    """The metadata store the settings name, migrated to the current schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_metadata_engine(settings.resolved_database_url)
    if migrate:
        # Imported here: serving workers never migrate, and alembic costs ~10 MiB of memory each.
        from modelyard.metadata.migrations import upgrade

        upgrade(engine)
    return SqlMetadataStore(engine)


def open_blob_store(settings: Settings) -> FilesystemBlobStore:
    """The blob store the settings name (one backend today; the setting is validated at start)."""
    return FilesystemBlobStore(settings.data_dir.resolve(), fsync=settings.fsync)


def create_app(settings: Settings, *, migrate: bool = True) -> web.Application:
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
    registry = Registry(
        settings=settings,
        uploads=UploadService(metadata, store, runner, repositories),
        blobs=BlobService(metadata, store, runner),
        manifests=ManifestService(metadata, runner, repositories, max_bytes=settings.manifest_max_bytes),
        listing=ListingService(metadata),
        compartments=compartments,
        repositories=repositories,
        identity=IdentityService(metadata, runner, settings),
        iam=IamService(metadata, runner),
        tokens=tokens,
        audit=AuditService(metadata, runner),
    )
    app = web.Application(
        middlewares=[error_middleware],
        handler_args={"read_bufsize": READ_BUFFER_BYTES},
        client_max_size=ADMIN_BODY_MAX_BYTES,
    )
    app[REGISTRY] = registry
    oci.add_routes(app)
    admin.add_routes(app)
    auth.add_routes(app)

    async def bootstrap(_app: web.Application) -> None:
        if settings.auth_enabled:
            await registry.identity.bootstrap_admin()

    app.on_startup.append(bootstrap)

    async def close(_app: web.Application) -> None:
        registry.identity.close()
        runner.shutdown()
        metadata.close()

    app.on_cleanup.append(close)
    return app
