"""``/api/v1/webhooks``: subscriptions, their delivery log and redelivery. Every operation needs
admin (``webhooks.manage``) on the subscription's scope: the registry, its compartment or its
repository. A subscription the caller may not manage answers like a missing one."""

from __future__ import annotations

import re

from modelyard.api.admin.framework import LIMIT, PAGE_NUMBER, Call, Operation, QueryParam, ResourceKind
from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.webhooks import AttemptRecord, DeliveryRecord, Scope, WebhookRecord
from modelyard.policy.authorizer import Permission
from modelyard.schemas import webhooks as schemas

MANAGE = Permission.WEBHOOKS_MANAGE


def _kind(scope: Scope) -> tuple[ResourceKind, str | None]:
    if scope.kind == "compartment":
        return "compartment", scope.name
    if scope.kind == "repository":
        return "repository", scope.name
    return "registry", None


def _webhook(record: WebhookRecord) -> schemas.Webhook:
    return schemas.Webhook(
        id=record.id, scope=record.scope, url=record.url, event_types=list(record.event_types),
        description=record.description, active=record.active, created_by=record.created_by,
        created_at=record.created_at,
    )  # fmt: skip


def _delivery(record: DeliveryRecord) -> schemas.Delivery:
    return schemas.Delivery(
        id=record.id, webhook_id=record.webhook_id, event_id=record.event_id, event_type=record.event_type,
        resource=record.resource, state=record.state, attempts=record.attempts, tries_left=record.tries_left,
        next_attempt_at=record.next_attempt_at, last_status_code=record.last_status_code,
        last_error=record.last_error, created_at=record.created_at, updated_at=record.updated_at,
    )  # fmt: skip


def _attempt(record: AttemptRecord) -> schemas.Attempt:
    return schemas.Attempt(
        attempt=record.attempt, time=record.time, status_code=record.status_code,
        duration_ms=record.duration_ms, error=record.error,
    )  # fmt: skip


def _webhook_id(call: Call, name: str = "webhook_id") -> int:
    raw = call.path(name)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise RegistryError(ErrorCode.NOT_FOUND, f"{name.split('_', maxsplit=1)[0]} {raw[:40]!r} does not exist")
    return int(raw)


async def _managed(call: Call) -> WebhookRecord:
    """The subscription of the path, if the caller may manage it (else 404, or 401 when anonymous)."""
    call.require_authenticated()
    webhook_id = _webhook_id(call)
    record = await call.registry.read(call.registry.webhooks.get, webhook_id)
    kind, name = _kind(Scope.parse(record.scope))
    if not await call.can(MANAGE, kind, name):
        raise RegistryError(ErrorCode.NOT_FOUND, f"webhook {webhook_id} does not exist")
    return record


async def create_webhook(call: Call) -> schemas.WebhookCreated:
    body: schemas.WebhookCreate = call.body
    scope = Scope.parse(body.scope)
    await call.require(MANAGE, *_kind(scope))
    created = await call.registry.webhooks.create(scope, body.url, body.event_types, body.description, actor=call.actor)
    return schemas.WebhookCreated(**_webhook(created.record).model_dump(), secret=created.secret)


async def list_webhooks(call: Call) -> schemas.WebhookList:
    call.require_authenticated()
    scope_text = call.request.query.get("scope")
    if scope_text is not None and not re.fullmatch(schemas.SCOPE_PATTERN, scope_text):
        raise ValidationFailed([("scope", "must be 'registry', 'compartment:NAME' or 'repository:NAME'")])
    scopes = None
    if scope_text is not None:
        scope = Scope.parse(scope_text)
        await call.require(MANAGE, *_kind(scope))
        scopes = [str(scope)]

    def read() -> list[WebhookRecord]:  # the list and each subscription's check, off the loop
        records = call.registry.webhooks.subscriptions(scopes)
        return [r for r in records if call.can_now(MANAGE, *_kind(Scope.parse(r.scope)))]

    visible = await call.registry.read(read)
    return schemas.WebhookList(items=[_webhook(r) for r in visible])


async def show_webhook(call: Call) -> schemas.Webhook:
    return _webhook(await _managed(call))


async def delete_webhook(call: Call) -> None:
    record = await _managed(call)
    await call.registry.webhooks.delete(record.id, actor=call.actor)


async def list_deliveries(call: Call) -> schemas.DeliveryPage:
    record = await _managed(call)
    limit = call.limit()
    found = await call.registry.read(call.registry.webhooks.deliveries, record.id, limit + 1, call.page_number())
    items = [_delivery(d) for d in found[:limit]]
    return schemas.DeliveryPage(items=items, next_page=str(items[-1].id) if len(found) > limit else None)


async def show_delivery(call: Call) -> schemas.DeliveryDetail:
    record = await _managed(call)
    delivery, attempts = await call.registry.read(
        call.registry.webhooks.delivery, record.id, _webhook_id(call, "delivery_id")
    )
    return schemas.DeliveryDetail(**_delivery(delivery).model_dump(), log=[_attempt(a) for a in attempts])


async def redeliver(call: Call) -> schemas.Delivery:
    record = await _managed(call)
    body: schemas.RedeliverRequest = call.body
    delivery = await call.registry.webhooks.redeliver(
        record.id, _webhook_id(call, "delivery_id"), tries=body.tries, actor=call.actor
    )
    return _delivery(delivery)


async def event_types(call: Call) -> schemas.EventTypes:
    call.require_authenticated()
    return schemas.EventTypes(items=call.registry.webhooks.event_types())


SCOPE = QueryParam("scope", "string", "Only this scope.", pattern=schemas.SCOPE_PATTERN)
BASE = "/api/v1/webhooks"
ONE = BASE + "/{webhook_id}"
DELIVERY = ONE + "/deliveries/{delivery_id}"

OPERATIONS = [
    Operation("GET", "/api/v1/webhook-event-types", "listWebhookEventTypes",
              "Event types a webhook can filter on", "webhooks", event_types, response=schemas.EventTypes,
              errors=(401,)),
    Operation("POST", BASE, "createWebhook", "Subscribe a URL to events (the secret is shown once)", "webhooks",
              create_webhook, body=schemas.WebhookCreate, response=schemas.WebhookCreated, status=201,
              errors=(401, 403, 404, 422)),
    Operation("GET", BASE, "listWebhooks", "Subscriptions the caller manages", "webhooks", list_webhooks,
              response=schemas.WebhookList, query=(SCOPE,),
              errors=(401, 403, 422)),
    Operation("GET", ONE, "getWebhook", "One subscription", "webhooks", show_webhook, response=schemas.Webhook),
    Operation("DELETE", ONE, "deleteWebhook", "Delete a subscription and its delivery log", "webhooks",
              delete_webhook, status=204),
    Operation("GET", ONE + "/deliveries", "listWebhookDeliveries", "Deliveries, newest first", "webhooks",
              list_deliveries, response=schemas.DeliveryPage, query=(LIMIT, PAGE_NUMBER)),
    Operation("GET", DELIVERY, "getWebhookDelivery", "One delivery with its log of attempts", "webhooks",
              show_delivery, response=schemas.DeliveryDetail),
    Operation("POST", DELIVERY + "/redeliver", "redeliverWebhook", "Send a delivery again, now", "webhooks",
              redeliver, body=schemas.RedeliverRequest, response=schemas.Delivery, status=202),
]  # fmt: skip
