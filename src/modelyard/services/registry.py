"""The bundle of services the API and the background workers call, built once by
``bootstrap.build_registry``."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.config import Settings
from modelyard.services.aliases import AliasService
from modelyard.services.audit import AuditService
from modelyard.services.auth import AuthService
from modelyard.services.blobs import BlobService
from modelyard.services.compartments import CompartmentService
from modelyard.services.gc import GarbageCollector
from modelyard.services.health import HealthService
from modelyard.services.hf import HubService
from modelyard.services.iam import IamService
from modelyard.services.identity import IdentityService
from modelyard.services.lifecycle import Lifecycle
from modelyard.services.listing import ListingService
from modelyard.services.manifests import ManifestService
from modelyard.services.models import ModelService
from modelyard.services.models.diff import DiffService
from modelyard.services.models.lineage import LineageService
from modelyard.services.proxy import PullThrough
from modelyard.services.replication import ReplicationService, ReplicationWorker
from modelyard.services.repositories import RepositoryService
from modelyard.services.runner import Reader
from modelyard.services.tokens import TokenService
from modelyard.services.uploads import UploadService
from modelyard.services.webhooks import WebhookDelivery, WebhookService


@dataclass(frozen=True, slots=True)
class Registry:
    settings: Settings
    #: ``await registry.read(service.method, ...)``: how handlers call a synchronous read.
    read: Reader
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService
    listing: ListingService
    compartments: CompartmentService
    repositories: RepositoryService
    identity: IdentityService
    iam: IamService
    tokens: TokenService
    auth: AuthService
    #: the Hugging Face Hub API's reads (``api/hf``)
    hub: HubService
    audit: AuditService
    webhooks: WebhookService
    webhook_delivery: WebhookDelivery
    health: HealthService
    gc: GarbageCollector
    lifecycle: Lifecycle
    models: ModelService
    lineage: LineageService
    diffs: DiffService
    aliases: AliasService
    #: the pull-through cache (``services/proxy/``): its rules and the /v2 read path's fallback
    proxy: PullThrough
    replication: ReplicationService
    #: the leader's on-push and scheduled replication job (``workers.py``)
    replication_worker: ReplicationWorker
