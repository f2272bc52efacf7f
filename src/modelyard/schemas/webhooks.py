"""Wire models of the webhook endpoints (``/api/v1/webhooks``), shared by the server and the clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCOPE_PATTERN = r"^(registry|(compartment|repository):[!-~]+)$"
Scope = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=SCOPE_PATTERN)]
# http(s), a host (ASCII: an IDN in punycode; no credentials), then printable ASCII; the server
# also checks that the host and port parse.
URL_PATTERN = r"^https?://[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+([/?#][!-~]*)?$"
EventFilter = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookCreate(_Model):
    scope: Scope = Field("registry", description="registry, compartment:NAME or repository:NAME.")
    url: str = Field(max_length=2048, pattern=URL_PATTERN, description="Where events are POSTed (http or https).")
    event_types: list[EventFilter] = Field(
        default_factory=lambda: ["*"],
        max_length=64,
        description="Event type names (manifest.pushed, tag.moved, ...) or patterns (manifest.*, *).",
    )
    description: str = Field("", max_length=1000)


class Webhook(_Model):
    id: int
    scope: str
    url: str
    event_types: list[str]
    description: str
    active: bool
    created_by: str | None
    created_at: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="The signing secret (Standard Webhooks, whsec_...): shown only this once.")


class WebhookList(_Model):
    items: list[Webhook]


class Delivery(_Model):
    id: int
    webhook_id: int
    event_id: int
    event_type: str
    resource: str
    state: str = Field(description="pending, succeeded or failed.")
    attempts: int
    tries_left: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class Attempt(_Model):
    attempt: int
    time: datetime
    status_code: int | None
    duration_ms: float
    error: str | None


class DeliveryDetail(Delivery):
    log: list[Attempt]


class DeliveryPage(_Model):
    items: list[Delivery]
    next_page: str | None


class RedeliverRequest(_Model):
    tries: int | None = Field(None, ge=1, le=100, description="Tries to give it (default: webhook_max_attempts).")


class EventTypes(_Model):
    items: list[str]
