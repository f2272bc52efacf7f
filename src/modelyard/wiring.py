"""Wiring of the pull-through cache for ``bootstrap.build_registry`` (kept apart so the main
wiring file grows by a line): its store, its secret box and the egress client it fetches with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.config import Settings
from modelyard.metadata.sql import SqlMetadataStore
from modelyard.metadata.sql_proxy import SqlProxy
from modelyard.secretkey import load_secret_key
from modelyard.services.blobs import BlobService
from modelyard.services.manifests import ManifestService
from modelyard.services.models import ModelService
from modelyard.services.proxy import ProxyRules, PullThrough
from modelyard.services.runner import BlockingRunner, Reader
from modelyard.services.secretbox import SecretBox
from modelyard.services.uploads import UploadService

if TYPE_CHECKING:
    from modelyard.egress.oci import OciRegistryClient, UpstreamCredentials


def _client(url: str, credentials: UpstreamCredentials | None, verify_tls: bool) -> OciRegistryClient:
    # Imported on first use: httpx costs a serving worker ~5 MiB, and most registries proxy nothing.
    from modelyard.egress.oci import OciRegistryClient

    return OciRegistryClient(url, credentials=credentials, verify_tls=verify_tls)


def build_pull_through(
    settings: Settings,
    metadata: SqlMetadataStore,
    manifests: ManifestService,
    blobs: BlobService,
    uploads: UploadService,
    runner: BlockingRunner,
    models: ModelService,
) -> PullThrough:
    store = SqlProxy(metadata)
    rules = ProxyRules(store, SecretBox(load_secret_key(settings)), runner, _client)
    read = Reader(runner, inline=metadata.reads_inline)
    spool = settings.data_dir.resolve() / "proxy-spool"
    return PullThrough(metadata, store, rules, manifests, blobs, uploads, runner, read, spool, reindex=models.index)
