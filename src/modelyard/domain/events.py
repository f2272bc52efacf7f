"""Domain events: what happened to the registry, who did it, when and from where.

Services build these and hand them to the metadata write that makes the change, which inserts
them **in the same transaction** (the outbox): a change that rolls back records nothing, and a
change that commits is never missing its event. Events that go with no data change (a login,
a token issued) are written on their own. Handlers never write events.

Where they live: the ``audit_events`` table *is* the outbox. Each row keeps the audit log's
columns (actor, action, resource, outcome, client address, detail), which ``GET /api/v1/audit``
and ``modelyard audit`` read as before, plus the event's type name and typed payload, which
consumers (webhooks, replication, retention, metrics) read back as :class:`Event` objects with
:func:`event_from_row`. One table rather than an audit table beside an outbox table: every
auditable change is an event and every event is audited, so two tables would hold the same
facts twice and could disagree. A consumer keeps its own position (the last row id it handled)
rather than a ``delivered`` flag on the row, so several consumers can read the same events.

No event carries a secret: payloads hold names, digests and ids only, and :func:`scrub` drops
anything whose key looks like a credential before a row is written, however it got there.

The ``resource`` of an event names the thing (``repository:acme/llm``, ``user:alice``,
``acme/llm:v1`` for a pushed reference), not the URL it was changed through: the same change
made by the CLI offline, a background job or another API names the same resource.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

_SECRET_KEYS = ("password", "secret", "token", "key")


def scrub(detail: Any) -> Any:
    """Drop anything that looks like a credential, however a caller passed it."""
    if isinstance(detail, dict):
        return {k: scrub(v) for k, v in detail.items() if not any(s in str(k).lower() for s in _SECRET_KEYS)}
    if isinstance(detail, list | tuple):
        return [scrub(v) for v in detail]
    return detail


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts and from where: a token subject (``user:alice``, ``serviceAccount:ci``,
    ``anonymous``) or, for a failed login, the name it tried; and the client's address."""

    subject: str
    client_ip: str = "unknown"


SYSTEM = Actor("system", "local")
"""The registry itself: start-up, the CLI's offline commands, background jobs."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One thing that happened. Subclasses add their typed payload as fields and say how the
    audit log shows them (:attr:`action`, :attr:`resource`, :attr:`outcome`, :meth:`detail`)."""

    action: ClassVar[str]
    outcome: ClassVar[str] = "success"
    actor: Actor
    time: datetime = field(default_factory=_now)

    @property
    def resource(self) -> str:
        raise NotImplementedError

    def detail(self) -> dict[str, Any] | None:
        """What the audit log shows beside the resource (``None``: nothing)."""
        return None

    def payload(self) -> dict[str, Any]:
        """The typed fields (not actor and time), as JSON values."""
        return {
            f.name: _thaw(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in ("actor", "time")
        }


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


# -- content: blobs, manifests, tags ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobPushed(Event):
    """An upload finished: the blob is stored and linked into the repository.

    Not emitted yet: ``Uploads.complete`` takes ``events`` already, the upload service does not
    know the acting client's address yet (the next step passes an :class:`Actor` to ``commit``
    and ``mount``)."""

    action: ClassVar[str] = "push.blob"
    repository: str
    digest: str
    size: int

    @property
    def resource(self) -> str:
        return f"{self.repository}@{self.digest}"

    def detail(self) -> dict[str, Any] | None:
        return {"size": self.size}


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobDeleted(Event):
    """A blob was unlinked from a repository (its bytes go at garbage collection)."""

    action: ClassVar[str] = "delete.blob"
    repository: str
    digest: str

    @property
    def resource(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestPushed(Event):
    """A manifest was put, under ``tag`` or by digest (``reference`` is what the client named)."""

    action: ClassVar[str] = "push"
    repository: str
    reference: str
    digest: str
    media_type: str
    tag: str | None = None

    @property
    def resource(self) -> str:
        return f"{self.repository}:{self.reference}"

    def detail(self) -> dict[str, Any] | None:
        return {"digest": self.digest, "media_type": self.media_type}


@dataclass(frozen=True, slots=True, kw_only=True)
class TagMoved(Event):
    """A tag that pointed to one manifest now points to another (recorded beside the push that moved it)."""

    action: ClassVar[str] = "tag.move"
    repository: str
    tag: str
    from_digest: str
    to_digest: str

    @property
    def resource(self) -> str:
        return f"{self.repository}:{self.tag}"

    def detail(self) -> dict[str, Any] | None:
        return {"from": self.from_digest, "to": self.to_digest}


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasMoved(Event):
    """An alias (a mutable tag) was pointed at a manifest through the admin API (``how`` ``api``)
    or rolled back (``rollback``); ``from_digest`` ``None``: the alias was new. A move by a plain
    ``/v2`` push is :class:`TagMoved`; the tag history (``services/aliases.py``) has them all."""

    action: ClassVar[str] = "alias.move"
    repository: str
    alias: str
    how: str
    from_digest: str | None
    to_digest: str
    reason: str | None = None

    @property
    def resource(self) -> str:
        return f"{self.repository}:{self.alias}"

    def detail(self) -> dict[str, Any] | None:
        return {"how": self.how, "from": self.from_digest, "to": self.to_digest, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestDeleted(Event):
    """A manifest was deleted by digest, and every tag on it ended (``how``: ``retention`` when a
    retention policy removed it; ``None``: a client's delete); ``tags``: the tags it had."""

    action: ClassVar[str] = "delete"
    repository: str
    digest: str
    how: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def resource(self) -> str:
        return f"{self.repository}:{self.digest}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TagDeleted(Event):
    """A tag ended; its manifest stays."""

    action: ClassVar[str] = "delete"
    repository: str
    tag: str

    @property
    def resource(self) -> str:
        return f"{self.repository}:{self.tag}"


# -- retention, quotas and garbage collection (``services/lifecycle/``) --------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicySet(Event):
    """The retention policy of ``scope`` (``repository:acme/llm``, ``compartment:acme``) was set."""

    action: ClassVar[str] = "retention.set"
    scope: str
    keep_last: int | None
    keep_days: float | None
    keep_tags: tuple[str, ...]
    alias_window_days: float

    @property
    def resource(self) -> str:
        return self.scope

    def detail(self) -> dict[str, Any] | None:
        return self.payload()


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicyDeleted(Event):
    action: ClassVar[str] = "retention.delete"
    scope: str

    @property
    def resource(self) -> str:
        return self.scope


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionApplied(Event):
    """A retention run finished on ``scope``: ``deleted`` manifests went (each also recorded as
    :class:`ManifestDeleted` with ``how="retention"``), ``freed_bytes`` go at the next gc."""

    action: ClassVar[str] = "retention.run"
    scope: str
    trigger: str
    deleted: int
    freed_bytes: int

    @property
    def resource(self) -> str:
        return self.scope

    def detail(self) -> dict[str, Any] | None:
        return {"trigger": self.trigger, "deleted": self.deleted, "freed_bytes": self.freed_bytes}


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaSet(Event):
    action: ClassVar[str] = "quota.set"
    scope: str
    limit_bytes: int

    @property
    def resource(self) -> str:
        return self.scope

    def detail(self) -> dict[str, Any] | None:
        return {"limit_bytes": self.limit_bytes}


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaDeleted(Event):
    action: ClassVar[str] = "quota.delete"
    scope: str

    @property
    def resource(self) -> str:
        return self.scope


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaExceeded(Event):
    """A push to ``repository`` was refused: ``usage_bytes`` + ``adding_bytes`` would pass the
    quota of ``scope`` (``stage``: ``upload`` at its start, ``commit``, ``manifest``)."""

    action: ClassVar[str] = "quota.exceeded"
    outcome: ClassVar[str] = "failure"
    scope: str
    repository: str
    limit_bytes: int
    usage_bytes: int
    adding_bytes: int
    stage: str

    @property
    def resource(self) -> str:
        return f"repository:{self.repository}"

    def detail(self) -> dict[str, Any] | None:
        return self.payload()


@dataclass(frozen=True, slots=True, kw_only=True)
class GarbageCollected(Event):
    """A garbage collection finished (``trigger``: ``schedule``, ``cli``)."""

    action: ClassVar[str] = "gc.run"
    trigger: str
    blobs: int
    orphan_files: int
    uploads: int
    freed_bytes: int

    @property
    def resource(self) -> str:
        return "registry"

    def detail(self) -> dict[str, Any] | None:
        return self.payload()


# -- the control plane: repositories, compartments, configuration, IAM -------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryCreated(Event):
    """A repository was created, explicitly or by a push (``on_push``)."""

    action: ClassVar[str] = "repository.create"
    repository: str
    on_push: bool = False

    @property
    def resource(self) -> str:
        return f"repository:{self.repository}"

    def detail(self) -> dict[str, Any] | None:
        return {"on_push": True} if self.on_push else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryUpdated(Event):
    """Settings of a repository changed (``fields``: which)."""

    action: ClassVar[str] = "repository.update"
    repository: str
    fields: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"repository:{self.repository}"

    def detail(self) -> dict[str, Any] | None:
        return {"fields": list(self.fields)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RepositoryDeleted(Event):
    """A repository was deleted with its tags, manifests, links, uploads and IAM policy."""

    action: ClassVar[str] = "repository.delete"
    repository: str

    @property
    def resource(self) -> str:
        return f"repository:{self.repository}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentCreated(Event):
    action: ClassVar[str] = "compartment.create"
    compartment: str

    @property
    def resource(self) -> str:
        return f"compartment:{self.compartment}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentUpdated(Event):
    """Settings of a compartment changed (``fields``: which)."""

    action: ClassVar[str] = "compartment.update"
    compartment: str
    fields: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"compartment:{self.compartment}"

    def detail(self) -> dict[str, Any] | None:
        return {"fields": list(self.fields)}


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentConfigured(Event):
    """A compartment's create-on-first-push setting was set (``None``: the registry's default)."""

    action: ClassVar[str] = "compartment.configure"
    compartment: str
    create_repository_on_first_push: bool | None

    @property
    def resource(self) -> str:
        return f"compartment:{self.compartment}"

    def detail(self) -> dict[str, Any] | None:
        return {"create_repository_on_first_push": self.create_repository_on_first_push}


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentDeleted(Event):
    action: ClassVar[str] = "compartment.delete"
    compartment: str

    @property
    def resource(self) -> str:
        return f"compartment:{self.compartment}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryConfigured(Event):
    action: ClassVar[str] = "registry.configure"
    create_repository_on_first_push: bool
    create_compartment_on_first_push: bool

    @property
    def resource(self) -> str:
        return "registry"

    def detail(self) -> dict[str, Any] | None:
        return self.payload()


@dataclass(frozen=True, slots=True, kw_only=True)
class IamPolicyChanged(Event):
    """The IAM policy of ``resource`` (``registry``, ``compartment:c``, ``repository:r``) was
    replaced; ``bindings`` are (role, members) pairs as written (``allUsers`` reader included),
    ``conditions`` (binding index, tag globs) for those limited to tags."""

    action: ClassVar[str] = "iam.set"
    target: str
    bindings: tuple[tuple[str, tuple[str, ...]], ...]
    conditions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def resource(self) -> str:
        return self.target

    def detail(self) -> dict[str, Any] | None:
        shown: list[dict[str, Any]] = [{"role": role, "members": list(members)} for role, members in self.bindings]
        for index, tags in self.conditions:
            if index.isdigit() and int(index) < len(shown):
                shown[int(index)]["condition"] = {"tags": list(tags)}
        return {"bindings": shown}


# -- principals and credentials ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalCreated(Event):
    """A user, service account or group was created (``principal``: ``user:alice``,
    ``serviceAccount:ci``, ``group:ml``)."""

    action: ClassVar[str] = "principal.create"
    principal: str

    @property
    def resource(self) -> str:
        return self.principal


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalDeleted(Event):
    """A user, service account or group was deleted (and removed from every IAM binding)."""

    action: ClassVar[str] = "principal.delete"
    principal: str

    @property
    def resource(self) -> str:
        return self.principal


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordChanged(Event):
    """A user's password was set (by themselves, an administrator or ``reset-admin``)."""

    action: ClassVar[str] = "user.password"
    user: str

    @property
    def resource(self) -> str:
        return f"user:{self.user}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMembersChanged(Event):
    action: ClassVar[str] = "group.members"
    group: str
    members: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"group:{self.group}"

    def detail(self) -> dict[str, Any] | None:
        return {"members": list(self.members)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyCreated(Event):
    """An API key was created for ``principal`` (``identifier``: the key's public id, never its secret)."""

    action: ClassVar[str] = "key.create"
    principal: str
    identifier: str

    @property
    def resource(self) -> str:
        return f"{self.principal}/keys/{self.identifier}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyRevoked(Event):
    action: ClassVar[str] = "key.revoke"
    principal: str
    identifier: str

    @property
    def resource(self) -> str:
        return f"{self.principal}/keys/{self.identifier}"


# -- logins and tokens (no data change: written on their own) ------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginSucceeded(Event):
    action: ClassVar[str] = "login"

    @property
    def resource(self) -> str:
        return "registry"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginFailed(Event):
    """A login was refused; the actor is the name it tried (an API key by its id), ``reason``
    the error code (``UNAUTHORIZED``, ``TOOMANYREQUESTS``...)."""

    action: ClassVar[str] = "login"
    outcome: ClassVar[str] = "failure"
    reason: str

    @property
    def resource(self) -> str:
        return "registry"

    def detail(self) -> dict[str, Any] | None:
        return {"reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenIssued(Event):
    """An access token was issued; ``access`` lists what it grants (``repository:acme/llm:pull,push``)."""

    action: ClassVar[str] = "token.issue"
    access: tuple[str, ...]

    @property
    def resource(self) -> str:
        return "registry"

    def detail(self) -> dict[str, Any] | None:
        return {"access": list(self.access)}


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        BlobPushed, BlobDeleted, ManifestPushed, TagMoved, AliasMoved, ManifestDeleted, TagDeleted,
        RepositoryCreated, RepositoryUpdated, RepositoryDeleted,
        CompartmentCreated, CompartmentUpdated, CompartmentConfigured, CompartmentDeleted, RegistryConfigured,
        IamPolicyChanged, PrincipalCreated, PrincipalDeleted, PasswordChanged, GroupMembersChanged,
        ApiKeyCreated, ApiKeyRevoked, LoginSucceeded, LoginFailed, TokenIssued,
    )
}  # fmt: skip
EVENT_TYPES.update(
    (cls.__name__, cls)
    for cls in (
        RetentionPolicySet, RetentionPolicyDeleted, RetentionApplied, QuotaSet, QuotaDeleted, QuotaExceeded,
        GarbageCollected,
    )
)  # fmt: skip


def audit_action(event: Event) -> str:
    """The audit log's action: the event's, except that principals say what kind they are
    (``user.create``, ``serviceAccount.delete``, ``group.create``), as the log always has."""
    if isinstance(event, PrincipalCreated | PrincipalDeleted):
        kind = event.principal.partition(":")[0]
        return f"{kind}.{'create' if isinstance(event, PrincipalCreated) else 'delete'}"
    return event.action


def event_from_row(type_name: str, payload: dict[str, Any], actor: str, client_ip: str, time: datetime) -> Event:
    """An event read back from the outbox (the inverse of writing its type name and payload)."""
    cls = EVENT_TYPES[type_name]
    values = {key: _freeze(value) for key, value in payload.items()}
    return cls(actor=Actor(actor, client_ip), time=time, **values)


# -- webhooks (``services/webhooks/``): registered here, after the table, to keep the hunks apart ---


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookCreated(Event):
    """A webhook subscription was created on ``scope``. Its secret is never part of an event, and
    ``url`` only as scheme and host (``domain/webhooks.redacted_url``): a hook's path may be its
    credential."""

    action: ClassVar[str] = "webhook.create"
    webhook_id: int
    scope: str
    url: str
    event_types: tuple[str, ...]

    @property
    def resource(self) -> str:
        return f"webhook:{self.webhook_id}"

    def detail(self) -> dict[str, Any] | None:
        return {"scope": self.scope, "url": self.url, "event_types": list(self.event_types)}


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookDeleted(Event):
    action: ClassVar[str] = "webhook.delete"
    webhook_id: int
    scope: str

    @property
    def resource(self) -> str:
        return f"webhook:{self.webhook_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookRedelivered(Event):
    """Someone asked for a delivery to be sent again."""

    action: ClassVar[str] = "webhook.redeliver"
    webhook_id: int
    delivery_id: int
    scope: str

    @property
    def resource(self) -> str:
        return f"webhook:{self.webhook_id}/deliveries/{self.delivery_id}"


EVENT_TYPES.update({cls.__name__: cls for cls in (WebhookCreated, WebhookDeleted, WebhookRedelivered)})


# -- replication (``services/replication/``): registered here, after the webhooks, to keep the hunks apart --


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationTargetCreated(Event):
    """A replication target was registered; its credentials are never part of an event."""

    action: ClassVar[str] = "replication.target.create"
    target: str
    url: str

    @property
    def resource(self) -> str:
        return f"replication-target:{self.target}"

    def detail(self) -> dict[str, Any] | None:
        return {"url": self.url}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationTargetDeleted(Event):
    action: ClassVar[str] = "replication.target.delete"
    target: str

    @property
    def resource(self) -> str:
        return f"replication-target:{self.target}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationRuleCreated(Event):
    action: ClassVar[str] = "replication.rule.create"
    rule: str
    target: str
    repositories: str
    tags: str

    @property
    def resource(self) -> str:
        return f"replication-rule:{self.rule}"

    def detail(self) -> dict[str, Any] | None:
        return {"target": self.target, "repositories": self.repositories, "tags": self.tags}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationRuleDeleted(Event):
    action: ClassVar[str] = "replication.rule.delete"
    rule: str

    @property
    def resource(self) -> str:
        return f"replication-rule:{self.rule}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationFinished(Event):
    """An execution of a replication rule ended (``status``: ``succeeded`` or ``failed``), so a
    webhook can tell a deployment that a copy arrived, or an operator that one did not."""

    action: ClassVar[str] = "replication.run"
    rule: str
    target: str
    execution_id: int
    trigger: str
    status: str
    manifests_copied: int
    blobs_copied: int
    bytes_copied: int
    error: str | None = None

    @property
    def resource(self) -> str:
        return f"replication-rule:{self.rule}"

    def detail(self) -> dict[str, Any] | None:
        return self.payload()


EVENT_TYPES.update(
    {
        cls.__name__: cls
        for cls in (
            ReplicationTargetCreated,
            ReplicationTargetDeleted,
            ReplicationRuleCreated,
            ReplicationRuleDeleted,
            ReplicationFinished,
        )
    }
)


# -- pull-through cache (``services/proxy/``) --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyRuleCreated(Event):
    """A pull-through cache rule was added; its credentials are never part of an event."""

    action: ClassVar[str] = "proxy.rule.create"
    prefix: str
    upstream_url: str
    upstream_prefix: str

    @property
    def resource(self) -> str:
        return f"proxy-rule:{self.prefix}"

    def detail(self) -> dict[str, Any] | None:
        return {"upstream_url": self.upstream_url, "upstream_prefix": self.upstream_prefix}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyRuleDeleted(Event):
    action: ClassVar[str] = "proxy.rule.delete"
    prefix: str

    @property
    def resource(self) -> str:
        return f"proxy-rule:{self.prefix}"


EVENT_TYPES.update({cls.__name__: cls for cls in (ProxyRuleCreated, ProxyRuleDeleted)})
