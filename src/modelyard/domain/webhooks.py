"""Webhooks as data: subscriptions, their scopes and event filters, deliveries and attempts,
signatures and back-off. Pure functions, no I/O (``services/webhooks/`` does the work).

**Event type names** are derived from the event classes of ``domain/events.py``
(``ManifestPushed`` -> ``manifest.pushed``, ``TagMoved`` -> ``tag.moved``), so an event type
added there later (an alias moved, a rollback, a replication finished, a quota exceeded) is
deliverable, filterable and listed without touching this module.

**Filters** are names or shell-style patterns (``manifest.*``, ``*``). A pattern never matches
the chatty types of :data:`NAMED_ONLY` (a token issued on every ``docker pull``, each
successful login): a subscription gets those only by naming them.

**Scopes**: ``registry`` (everything), ``compartment:acme`` (events about the compartment or a
repository in it), ``repository:acme/llm`` (events about that repository). An event names its
repository or compartment through its payload fields ``repository`` and ``compartment``; an
event with neither (a login, a principal created) only reaches registry-wide subscriptions.

**Signatures** follow the Standard Webhooks scheme (standardwebhooks.com), so receivers can
verify with an off-the-shelf library: the secret is ``whsec_`` + base64 of 32 random bytes; the
``webhook-signature`` header is ``v1,`` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from modelyard.domain.errors import ValidationFailed
from modelyard.domain.events import EVENT_TYPES, Event
from modelyard.domain.reference import split_compartment

SECRET_PREFIX = "whsec_"
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_FILTER = re.compile(r"^[a-z0-9_.*?\[\]-]{1,64}$")

# Types a pattern never matches: they come with nearly every request.
NAMED_ONLY = frozenset({"token.issued", "login.succeeded"})


def type_name(event_class: type[Event]) -> str:
    """``ManifestPushed`` -> ``manifest.pushed``; ``IamPolicyChanged`` -> ``iam.policy.changed``."""
    return _CAMEL.sub(".", event_class.__name__).lower()


def event_type_names() -> dict[str, str]:
    """Every deliverable event type: dotted name -> the class name stored in the outbox."""
    return {type_name(cls): name for name, cls in EVENT_TYPES.items()}


def validate_filters(filters: Sequence[str]) -> list[str]:
    """The filters, deduplicated in order, or :class:`ValidationFailed` naming each bad one.

    A name must be a known type; a pattern must match at least one (a typo'd pattern that
    matches nothing would silently deliver nothing)."""
    known = event_type_names()
    problems = []
    result: list[str] = []
    if not filters:
        problems.append(("event_types", "give at least one event type or pattern (e.g. '*' or 'manifest.*')"))
    for index, item in enumerate(filters):
        if not _FILTER.match(item):
            problems.append((f"event_types.{index}", f"{item!r} is not an event type name or pattern"))
        elif not any(matches_filter([item], name) for name in known) and item not in NAMED_ONLY:
            problems.append(
                (f"event_types.{index}", f"{item!r} matches no event type; known: {', '.join(sorted(known))}")
            )
        elif item not in result:
            result.append(item)
    if problems:
        raise ValidationFailed(problems)
    return result


def matches_filter(filters: Iterable[str], name: str) -> bool:
    for item in filters:
        if item == name:
            return True
        if name not in NAMED_ONLY and any(c in item for c in "*?[") and fnmatch.fnmatchcase(name, item):
            return True
    return False


# -- scopes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a subscription listens: ``kind`` registry, compartment or repository, and its name."""

    kind: str
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, name = text.partition(":")
        if kind == "registry" and not name:
            return cls("registry")
        if kind in ("compartment", "repository") and name:
            return cls(kind, name)
        raise ValidationFailed([("scope", "must be 'registry', 'compartment:NAME' or 'repository:NAME'")])

    def __str__(self) -> str:
        return self.kind if self.name is None else f"{self.kind}:{self.name}"


def _compartment_of(repository: str) -> str:
    compartment, _ = split_compartment(repository)
    return compartment or ""


def event_scopes(event: Event) -> set[str]:
    """The scopes an event is visible in (``registry`` always)."""
    scopes = {"registry"}
    repository = getattr(event, "repository", None)
    if isinstance(repository, str) and repository:
        scopes.add(f"repository:{repository}")
        scopes.add(f"compartment:{_compartment_of(repository)}")
    compartment = getattr(event, "compartment", None)
    if isinstance(compartment, str) and compartment:
        scopes.add(f"compartment:{compartment}")
    return scopes


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: int
    scope: str
    url: str
    event_types: tuple[str, ...]
    description: str
    active: bool
    created_by: str | None
    created_at: datetime

    def wants(self, event: Event) -> bool:
        return (
            self.active
            and self.scope in event_scopes(event)
            and matches_filter(self.event_types, type_name(type(event)))
        )


@dataclass(frozen=True, slots=True)
class NewDelivery:
    webhook_id: int
    event_id: int
    event_type: str
    resource: str


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    webhook_id: int
    event_id: int
    event_type: str
    resource: str
    state: str  # pending, succeeded, failed
    attempts: int
    tries_left: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempt: int
    time: datetime
    status_code: int | None
    duration_ms: float
    error: str | None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST came to: a response code (any, 2xx is success) or an error (no response)."""

    status_code: int | None
    duration_ms: float
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """One delivery, ready to send: the CloudEvent body and the Standard Webhooks signature."""

    message_id: str
    timestamp: int
    body: bytes
    signature: str
    event_type: str
    delivery_id: int
    attempt: int


# -- secrets, signatures, back-off -----------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{message_id}.{timestamp}.{body}">``."""
    mac = hmac.new(secret_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential back-off before try ``attempt + 1``: base, 2 base, 4 base, ... at most ``cap``."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


def http_url(url: str, max_length: int) -> SplitResult:
    """``url`` split, if it is an ``http(s)://`` URL with a host, printable ASCII (a host name in
    punycode), at most ``max_length`` long, whose port parses; else :class:`ValidationFailed`.
    (Webhook endpoints and replication targets; each adds its own rules.)"""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (reading it validates it)
    except ValueError as exc:
        raise ValidationFailed([("url", f"is not a valid URL: {exc}")]) from None
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise ValidationFailed([("url", "must be printable ASCII (a host name in punycode)")])
    if len(url) > max_length or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed([("url", f"must be an http:// or https:// URL of at most {max_length} characters")])
    return parts


def redacted_url(url: str) -> str:
    """The URL as events and the audit log show it: scheme and host only, since many receivers
    (chat and CI hooks) carry their credential in the path or the query."""
    parts = urlsplit(url)
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{rest}"


def summary(event: Event) -> dict[str, Any]:
    """What a webhook body says about any event: the typed payload fields that name things."""
    return {k: v for k, v in event.payload().items() if v is not None}
