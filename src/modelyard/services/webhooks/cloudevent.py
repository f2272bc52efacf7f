"""The body of a webhook: the outbox event as a CloudEvents 1.0 JSON document (structured mode),
built with the ``cloudevents`` SDK so the envelope is the spec's, not a look-alike.

- ``id``: the outbox row id (unique per ``source``, the same on every retry and redelivery, so
  a receiver can drop duplicates); ``source``: the registry (``public_host`` when set);
  ``type``: ``dev.modelyard.`` + the dotted type name (``dev.modelyard.manifest.pushed``);
  ``subject``: what it is about (``acme/llm:v1``); ``time``: when it happened.
- ``data``: ``actor`` and ``client_ip``, ``repository``, ``tag``, ``digest`` where the event has
  them, every payload field of the event, and ``model`` (format, architecture, parameters, ...)
  when the pushed manifest is a model the index knows.
"""

from __future__ import annotations

from typing import Any

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

from modelyard.domain.events import Event
from modelyard.domain.models import ModelVersionRecord
from modelyard.domain.webhooks import summary, type_name

TYPE_PREFIX = "dev.modelyard."


def event_digest(event: Event) -> str | None:
    """The manifest an event is about, if any (``to_digest`` of a moved tag or alias)."""
    for name in ("digest", "to_digest"):
        value = getattr(event, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def model_summary(record: ModelVersionRecord) -> dict[str, Any]:
    facts = record.facts
    fields = {
        "packaging": facts.packaging, "format": facts.format, "name": facts.name,
        "architecture": facts.architecture, "parameters": facts.parameters, "precision": facts.precision,
        "quantization": facts.quantization, "license": facts.license, "total_size": facts.total_size,
        "file_count": facts.file_count,
    }  # fmt: skip
    return {k: v for k, v in fields.items() if v is not None}


def build_body(event_id: int, event: Event, source: str, model: ModelVersionRecord | None) -> tuple[str, bytes]:
    """The CloudEvent's ``type`` and its JSON body."""
    data: dict[str, Any] = {"actor": event.actor.subject, "client_ip": event.actor.client_ip}
    for name in ("repository", "tag", "compartment"):
        value = getattr(event, name, None)
        if value is not None:
            data[name] = value
    digest = event_digest(event)
    if digest is not None:
        data["digest"] = digest
    data["payload"] = summary(event)
    if model is not None:
        data["model"] = model_summary(model)
    kind = TYPE_PREFIX + type_name(type(event))
    attributes = {
        "id": str(event_id), "source": source, "type": kind, "subject": event.resource, "time": event.time,
        "datacontenttype": "application/json",
    }  # fmt: skip
    cloud_event = CloudEvent(attributes=attributes, data=data)
    return kind, to_structured_event(cloud_event).body
