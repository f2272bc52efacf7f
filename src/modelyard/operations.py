"""Wiring of the operations services -- webhooks, their delivery, health, replication -- for
``bootstrap.build_registry`` (kept here so the main wiring file grows by a line, not a page)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.config import Settings
from modelyard.egress.webhooks import HttpxTransport
from modelyard.metadata.sql import SqlMetadataStore
from modelyard.metadata.sql_replication import SqlReplication
from modelyard.metadata.sql_stats import SqlStats
from modelyard.metadata.sql_webhooks import SqlWebhooks
from modelyard.secretkey import load_secret_key
from modelyard.services.blobs import BlobService
from modelyard.services.health import HealthService
from modelyard.services.models import ModelService
from modelyard.services.replication import ReplicationService, ReplicationWorker, Replicator, RetryPolicy
from modelyard.services.runner import BlockingRunner, Reader
from modelyard.services.secretbox import SecretBox
from modelyard.services.webhooks import DeliveryPolicy, WebhookDelivery, WebhookService
from modelyard.storage.base import BlobStore

if TYPE_CHECKING:
    from modelyard.domain.replication import TargetAccess
    from modelyard.egress.oci_push import OciPushClient


def _target_client(access: TargetAccess, timeout: float, *, chunk_size: int) -> OciPushClient:
    # Imported on first use: httpx costs a serving worker ~5 MiB, and most registries replicate nothing.
    from modelyard.egress.oci_push import target_client

    return target_client(access, timeout, chunk_size=chunk_size)


@dataclass(frozen=True, slots=True)
class Operations:
    webhooks: WebhookService
    webhook_delivery: WebhookDelivery
    health: HealthService


def build_operations(
    settings: Settings, metadata: SqlMetadataStore, store: BlobStore, models: ModelService, runner: BlockingRunner
) -> Operations:
    box = SecretBox(load_secret_key(settings))
    webhook_store = SqlWebhooks(metadata)
    policy = DeliveryPolicy(
        timeout=settings.webhook_timeout,
        max_attempts=settings.webhook_max_attempts,
        retry_base=settings.webhook_retry_base,
        retry_max=settings.webhook_retry_max,
        concurrency=settings.webhook_concurrency,
        source=f"https://{settings.public_host}" if settings.public_host else "modelyard",
    )
    return Operations(
        webhooks=WebhookService(metadata, webhook_store, box, runner, max_attempts=settings.webhook_max_attempts),
        webhook_delivery=WebhookDelivery(
            webhook_store, metadata.audit, models, box, HttpxTransport(settings.webhook_concurrency), runner, policy
        ),
        health=HealthService(SqlStats(metadata), store, runner),
    )


def build_replication(
    settings: Settings, metadata: SqlMetadataStore, blobs: BlobService, runner: BlockingRunner
) -> ReplicationWorker:
    """Push replication: the leader's job, whose ``service`` the admin API calls."""
    replicator = Replicator(metadata, blobs, Reader(runner, inline=metadata.reads_inline))
    service = ReplicationService(
        SqlReplication(metadata), replicator, SecretBox(load_secret_key(settings)), runner,
        functools.partial(_target_client, chunk_size=settings.replication_chunk_size),
        timeout=settings.replication_timeout,
    )  # fmt: skip
    policy = RetryPolicy(
        settings.replication_retry_base, settings.replication_retry_max, settings.replication_max_attempts
    )
    return ReplicationWorker(service, metadata.audit, runner, policy)
