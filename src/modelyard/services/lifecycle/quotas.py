"""Quotas on stored bytes per repository and compartment, and the usage they are checked against.

Counting: each blob is charged once, to the repository holding its oldest link
(``metadata/sql_usage.py`` tells why that, rather than counting shared blobs everywhere or
nowhere); a compartment is charged what its repositories are.

When a push is checked (:meth:`QuotaService.check`), in the order it happens:

1. **upload start**, with the size the client declares (``Content-Length`` of a monolithic
   ``POST``/``PUT``, of each ``PATCH`` chunk plus what the upload already holds): refused before
   a byte of the body is read, so nobody streams gigabytes into a refusal. A blob whose digest the
   registry already stores adds nothing (it is charged to its first holder) and is never refused.
2. **blob commit**, with the verified size, for clients that declared nothing (chunked
   transfer encoding).
3. **manifest put**, with the manifest's bytes: a repository already over its quota (the quota
   was lowered, or concurrent pushes overshot) takes no new versions until something goes.

Checks read committed usage, so pushes racing each other can overshoot a quota by what they
have in flight together; the manifest check then stops the repository from growing further.
Each refusal is ``DENIED`` naming the quota, the usage and the size, and is recorded as a
:class:`~modelyard.domain.events.QuotaExceeded` event (webhooks can page someone).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import Actor, QuotaDeleted, QuotaExceeded, QuotaSet
from modelyard.domain.lifecycle import OwnerMissingError, Quota, Scope, Usage
from modelyard.domain.reference import split_compartment
from modelyard.metadata.lifecycle import LifecycleStore
from modelyard.services.audit import AuditService, log_events
from modelyard.services.runner import BlockingRunner, Reader


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def scope_missing(scope: Scope) -> RegistryError:
    return RegistryError(
        ErrorCode.NOT_FOUND, f"{scope.kind} {scope.name!r} does not exist", detail={scope.kind: scope.name}
    )


@dataclass(frozen=True, slots=True)
class UsageReport:
    compartments: list[Usage]
    repositories: list[Usage]


class QuotaService:
    def __init__(
        self, store: LifecycleStore, runner: BlockingRunner, audit: AuditService, *, read: Reader | None = None
    ) -> None:
        self._store = store
        self._run = runner.run
        # The check's reads run where they cost least (inline on SQLite: no thread hop per upload).
        self._read = read or Reader(runner, inline=False)
        self._audit = audit

    def get(self, scope: Scope) -> Quota | None:
        return self._store.get_quota(scope)

    def charged(self, scope: Scope) -> int:
        """The bytes quotas count for ``scope`` (``metadata/sql_usage.py``)."""
        return self._store.charged_bytes(scope)

    async def set(self, scope: Scope, limit_bytes: int, *, actor: Actor) -> Quota:
        if limit_bytes < 0:
            raise ValidationFailed([("limit_bytes", "must be 0 or more")])
        event = QuotaSet(actor=actor, scope=str(scope), limit_bytes=limit_bytes)
        try:
            quota = await self._run(
                self._store.set_quota, scope, Quota(limit_bytes, updated_by=actor.subject), events=[event]
            )
        except OwnerMissingError:
            raise scope_missing(scope) from None
        log_events([event])
        return quota

    async def delete(self, scope: Scope, *, actor: Actor) -> None:
        event = QuotaDeleted(actor=actor, scope=str(scope))
        if not await self._run(self._store.delete_quota, scope, events=[event]):
            raise RegistryError(ErrorCode.NOT_FOUND, f"{scope} has no quota", detail={"scope": str(scope)})
        log_events([event])

    def usage(self, compartment: str | None = None) -> UsageReport:
        """Usage of every compartment and repository (of one compartment), with their quotas."""
        repos = self._store.repository_usage(compartment)
        comps = self._store.compartment_usage(compartment) if compartment != "" else []

        def with_quota(kind: str, usage: Usage) -> Usage:
            quota = self._store.get_quota(Scope("repository" if kind == "repository" else "compartment", usage.name))
            return Usage(usage.name, usage.charged_bytes, usage.logical_bytes, usage.exclusive_bytes,
                         None if quota is None else quota.limit_bytes)  # fmt: skip

        return UsageReport([with_quota("compartment", u) for u in comps], [with_quota("repository", u) for u in repos])

    async def check(self, repository: str, adding: int, *, stage: str, digest: str | None = None, actor: Actor) -> None:
        """Refuse with ``DENIED`` if storing ``adding`` more bytes in ``repository`` passes a quota
        (``digest``: the blob's, when known; one the registry stores already adds nothing)."""
        compartment, _ = split_compartment(repository)
        quotas = await self._read(self._store.quotas_for, repository, compartment)
        if not quotas:
            return
        if digest is not None and adding > 0 and await self._read(self._store.blob_is_stored, digest):
            adding = 0
        for scope, limit in sorted(quotas.items(), key=lambda item: item[0].kind, reverse=True):
            usage = await self._read(self._store.charged_bytes, scope)
            if usage + adding <= limit:
                continue
            await self._audit.record(
                QuotaExceeded(actor=actor, scope=str(scope), repository=repository, limit_bytes=limit,
                              usage_bytes=usage, adding_bytes=adding, stage=stage)
            )  # fmt: skip
            adds = f" and this push adds {human_bytes(adding)} ({adding} bytes)" if adding else ""
            raise RegistryError(
                ErrorCode.DENIED,
                f"quota exceeded: {scope} may store {human_bytes(limit)} ({limit} bytes) and uses "
                f"{human_bytes(usage)} ({usage} bytes){adds}; delete versions (modelyard retention plan) "
                "or ask an administrator to raise the quota (modelyard quota set)",
                detail={"reason": "QUOTA_EXCEEDED", "scope": str(scope), "limit_bytes": limit,
                        "usage_bytes": usage, "adding_bytes": adding, "stage": stage},
            )  # fmt: skip
