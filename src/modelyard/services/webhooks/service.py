"""Managing webhook subscriptions: create (the secret is shown once), list, show, delete, read the
delivery log, redeliver. Who may do it is the API's check (admin on the subscription's scope);
the rules on what a subscription may say are here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import Actor, WebhookCreated, WebhookDeleted, WebhookRedelivered
from modelyard.domain.webhooks import (
    AttemptRecord,
    DeliveryRecord,
    Scope,
    WebhookRecord,
    event_type_names,
    http_url,
    new_secret,
    redacted_url,
    validate_filters,
)
from modelyard.metadata.base import MetadataStore
from modelyard.metadata.clock import utcnow
from modelyard.metadata.webhooks import WebhookStore
from modelyard.services.audit import log_events
from modelyard.services.runner import BlockingRunner
from modelyard.services.secretbox import SecretBox

SECRET_PURPOSE = "webhook-secret"
MAX_URL = 2048


def webhook_not_found(webhook_id: int) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"webhook {webhook_id} does not exist", detail={"webhook": webhook_id})


def validate_url(url: str) -> str:
    parts = http_url(url, MAX_URL)
    if parts.username or parts.password:
        raise ValidationFailed([("url", "must not carry credentials (the signature authenticates the registry)")])
    return url


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    record: WebhookRecord
    secret: str


class WebhookService:
    def __init__(self, metadata: MetadataStore, store: WebhookStore, box: SecretBox, runner: BlockingRunner,
                 *, max_attempts: int) -> None:  # fmt: skip
        self._meta = metadata
        self._store = store
        self._box = box
        self._run = runner.run
        self._max_attempts = max_attempts

    @staticmethod
    def event_types() -> list[str]:
        return sorted(event_type_names())

    def _check_scope(self, scope: Scope) -> None:
        if scope.kind == "compartment" and scope.name and self._meta.compartments.get(scope.name) is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"compartment {scope.name!r} does not exist")
        if scope.kind == "repository" and scope.name and self._meta.repositories.get(scope.name) is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"repository {scope.name!r} does not exist")

    async def create(
        self, scope: Scope, url: str, event_types: Sequence[str], description: str, *, actor: Actor
    ) -> CreatedWebhook:
        url = validate_url(url)
        filters = validate_filters(event_types)
        await self._run(self._check_scope, scope)
        secret = new_secret()
        sealed = self._box.seal(secret, SECRET_PURPOSE)
        written: list[WebhookCreated] = []

        def events(webhook_id: int) -> list[WebhookCreated]:
            kinds = tuple(filters)
            shown = redacted_url(url)
            written.append(
                WebhookCreated(actor=actor, webhook_id=webhook_id, scope=str(scope), url=shown, event_types=kinds)
            )
            return written

        record = await self._run(
            self._store.create, str(scope), url, filters, description, sealed, actor.subject, events=events
        )
        log_events(written)
        return CreatedWebhook(record, secret)

    def get(self, webhook_id: int) -> WebhookRecord:
        record = self._store.get(webhook_id)
        if record is None:
            raise webhook_not_found(webhook_id)
        return record

    def subscriptions(self, scopes: Sequence[str] | None = None) -> list[WebhookRecord]:
        return self._store.find(scopes)

    async def delete(self, webhook_id: int, *, actor: Actor) -> None:
        record = await self._run(self.get, webhook_id)
        event = WebhookDeleted(actor=actor, webhook_id=webhook_id, scope=record.scope)
        if not await self._run(self._store.delete, webhook_id, events=[event]):
            raise webhook_not_found(webhook_id)
        log_events([event])

    def deliveries(self, webhook_id: int, limit: int, before_id: int | None) -> list[DeliveryRecord]:
        self.get(webhook_id)
        return self._store.deliveries(webhook_id, limit, before_id)

    def delivery(self, webhook_id: int, delivery_id: int) -> tuple[DeliveryRecord, list[AttemptRecord]]:
        found = self._store.delivery(delivery_id)
        if found is None or found.webhook_id != webhook_id:
            raise RegistryError(ErrorCode.NOT_FOUND, f"delivery {delivery_id} of webhook {webhook_id} does not exist")
        return found, self._store.attempts(delivery_id)

    async def redeliver(
        self, webhook_id: int, delivery_id: int, *, tries: int | None = None, actor: Actor
    ) -> DeliveryRecord:
        """Send it again (the same event, id and body), due now, with a fresh set of tries."""
        record = await self._run(self.get, webhook_id)
        await self._run(self.delivery, webhook_id, delivery_id)
        event = WebhookRedelivered(actor=actor, webhook_id=webhook_id, delivery_id=delivery_id, scope=record.scope)
        redone = await self._run(
            self._store.redeliver, delivery_id, tries or self._max_attempts, utcnow(), events=[event]
        )
        if redone is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"delivery {delivery_id} of webhook {webhook_id} does not exist")
        log_events([event])
        return redone
