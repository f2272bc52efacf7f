"""Retention: policies per repository or compartment, a dry-run plan, and runs that delete what
the plan lists (by hand, or on a schedule by the leading worker).

**The plan and the run agree** because a run *is* a plan carried out: :meth:`RetentionService.run`
computes the same :meth:`plan` and deletes exactly its deletions, each in the repository's
transaction and only if its current tags are still the ones the plan saw (a version tagged or
re-tagged meanwhile stays, reported as skipped). ``policy/retention.py`` decides what is kept
and why.

**Bytes freed** are unique bytes, sharing-aware: the blobs the deleted manifests refer to that
no other manifest, in any repository, refers to. Garbage collection removes them (its next run;
they have not been linked for longer than its grace window). A layer shared with a kept version
or another repository frees nothing and is not counted.

A repository's own policy wins over its compartment's; a repository with neither is left alone.
Deletions are recorded as :class:`~modelyard.domain.events.ManifestDeleted` with
``how="retention"`` (in the tag history as ``how="retention"`` too), each run as a
:class:`~modelyard.domain.events.RetentionApplied` event and a maintenance run record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import (
    SYSTEM,
    Actor,
    Event,
    ManifestDeleted,
    RetentionApplied,
    RetentionPolicyDeleted,
    RetentionPolicySet,
)
from modelyard.domain.lifecycle import MaintenanceRun, OwnerMissingError, RetentionPolicy, Scope
from modelyard.domain.records import RepositoryRecord
from modelyard.domain.reference import split_compartment
from modelyard.metadata.base import MetadataStore
from modelyard.metadata.lifecycle import LifecycleStore
from modelyard.policy.immutability import tag_is_immutable
from modelyard.policy.retention import Decision, decide
from modelyard.services.audit import log_events
from modelyard.services.lifecycle.quotas import scope_missing
from modelyard.services.runner import BlockingRunner

_DETAIL_LIMIT = 1000  # deletions listed in a run record


@dataclass(frozen=True, slots=True)
class RepositoryPlan:
    repository: str
    policy_scope: Scope
    policy: RetentionPolicy
    decisions: list[Decision]

    @property
    def deletions(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    scope: Scope
    at: datetime
    repositories: list[RepositoryPlan]
    freed_bytes: int
    manifest_bytes: int

    @property
    def deletions(self) -> list[tuple[str, Decision]]:
        return [(plan.repository, d) for plan in self.repositories for d in plan.deletions]


@dataclass(frozen=True, slots=True)
class RetentionResult:
    plan: RetentionPlan
    deleted: list[tuple[str, str]]
    skipped: list[tuple[str, str]]
    freed_bytes: int
    run: MaintenanceRun | None = field(default=None)


def _is_alias(repository: RepositoryRecord, tag: str) -> bool:
    """An alias is a mutable tag (``domain/aliases.py``): what immutability does not pin."""
    return not tag_is_immutable(repository, tag)


def validate_policy(policy: RetentionPolicy) -> None:
    problems = []
    if policy.keep_last is None and policy.keep_days is None:
        problems.append(("keep_last", "set keep_last or keep_days (or both): a policy without either would keep "
                         "only tagged aliases and tag patterns"))  # fmt: skip
    if policy.keep_last is not None and policy.keep_last < 1:
        problems.append(("keep_last", "must be 1 or more"))
    for name, value in (("keep_days", policy.keep_days), ("alias_window_days", policy.alias_window_days)):
        if value is not None and (value < 0 or not math.isfinite(value)):
            problems.append((name, "must be a finite number of days, 0 or more"))
    if problems:
        raise ValidationFailed(problems)


class RetentionService:
    def __init__(self, metadata: MetadataStore, store: LifecycleStore, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._store = store
        self._run = runner.run

    # -- policies ------------------------------------------------------------------------

    def policy(self, scope: Scope) -> RetentionPolicy | None:
        return self._store.get_policy(scope)

    async def set_policy(self, scope: Scope, policy: RetentionPolicy, *, actor: Actor) -> RetentionPolicy:
        validate_policy(policy)
        event = RetentionPolicySet(
            actor=actor, scope=str(scope), keep_last=policy.keep_last, keep_days=policy.keep_days,
            keep_tags=policy.keep_tags, alias_window_days=policy.alias_window_days,
        )  # fmt: skip
        stored = RetentionPolicy(policy.keep_last, policy.keep_days, policy.keep_tags, policy.alias_window_days,
                                 updated_by=actor.subject)  # fmt: skip
        try:
            result = await self._run(self._store.set_policy, scope, stored, events=[event])
        except OwnerMissingError:
            raise scope_missing(scope) from None
        log_events([event])
        return result

    async def delete_policy(self, scope: Scope, *, actor: Actor) -> None:
        event = RetentionPolicyDeleted(actor=actor, scope=str(scope))
        if not await self._run(self._store.delete_policy, scope, events=[event]):
            raise RegistryError(ErrorCode.NOT_FOUND, f"{scope} has no retention policy", detail={"scope": str(scope)})
        log_events([event])

    def effective_policy(self, repository: str) -> tuple[Scope, RetentionPolicy] | None:
        """The repository's own policy, else its compartment's, else ``None``."""
        own = Scope("repository", repository)
        policy = self._store.get_policy(own)
        if policy is not None:
            return own, policy
        compartment, _ = split_compartment(repository)
        if compartment is None:
            return None
        inherited = Scope("compartment", compartment)
        policy = self._store.get_policy(inherited)
        return None if policy is None else (inherited, policy)

    # -- plans and runs ------------------------------------------------------------------

    def _repositories(self, scope: Scope) -> list[str]:
        if scope.kind == "repository":
            if self._meta.repositories.get(scope.name) is None:
                raise scope_missing(scope)
            return [scope.name]
        if self._meta.compartments.get(scope.name) is None:
            raise scope_missing(scope)
        return self._store.repositories_in(scope.name)

    def plan(self, scope: Scope, *, now: datetime | None = None) -> RetentionPlan:
        """What a run on ``scope`` would delete now, why the rest stays, and the bytes it frees."""
        now = now or datetime.now(UTC)
        plans = []
        for name in self._repositories(scope):
            found = self.effective_policy(name)
            record = self._meta.repositories.get(name)
            if found is None or record is None:
                continue
            policy_scope, policy = found
            versions = self._store.versions(name)
            spans = self._store.tag_spans(name, now - timedelta(days=policy.alias_window_days))
            is_alias = partial(_is_alias, record)
            decisions = decide(policy, versions, spans, now=now, is_alias=is_alias)
            plans.append(RepositoryPlan(name, policy_scope, policy, decisions))
        doomed = [d.version for plan in plans for d in plan.deletions]
        blobs = {b for v in doomed for b in v.blobs}
        sizes = self._store.blob_sizes(sorted(blobs))
        shared = self._store.still_referenced(sorted(sizes), excluding=[v.id for v in doomed])
        freed = sum(size for digest, size in sizes.items() if digest not in shared)
        return RetentionPlan(scope, now, plans, freed, sum(v.size for v in doomed))

    def apply(self, scope: Scope, *, actor: Actor = SYSTEM, trigger: str = "api") -> RetentionResult:
        """Compute the plan and carry it out (blocking; :meth:`run` from the event loop)."""
        started = datetime.now(UTC)
        plan = self.plan(scope, now=started)
        deleted: list[tuple[str, str]] = []
        skipped: list[tuple[str, str]] = []
        written: list[Event] = []
        for repo_plan in plan.repositories:
            wanted = [(d.version.digest, d.version.tags) for d in repo_plan.deletions]
            if not wanted:
                continue
            name = repo_plan.repository

            def events(digest: str, tags: tuple[str, ...], name: str = name) -> Sequence[Event]:
                event = ManifestDeleted(actor=actor, repository=name, digest=digest, how="retention", tags=tags)
                written.append(event)
                return [event]

            gone = set(self._store.delete_versions(name, wanted, events))
            deleted += [(name, digest) for digest, _ in wanted if digest in gone]
            skipped += [(name, digest) for digest, _ in wanted if digest not in gone]
        log_events(written)
        gone_digests = {digest for _, digest in deleted}
        blobs = {b for repo, d in plan.deletions if d.version.digest in gone_digests for b in d.version.blobs}
        sizes = self._store.blob_sizes(sorted(blobs))
        still = self._store.still_referenced(sorted(sizes))
        freed = sum(size for digest, size in sizes.items() if digest not in still)
        summary = RetentionApplied(
            actor=actor, scope=str(scope), trigger=trigger, deleted=len(deleted), freed_bytes=freed
        )
        run = self._store.record_run(
            MaintenanceRun(
                id=0, kind="retention", trigger=trigger, actor=actor.subject, scope=str(scope), dry_run=False,
                started_at=started, finished_at=datetime.now(UTC), removed=len(deleted), freed_bytes=freed,
                detail={"deleted": [f"{r}@{d}" for r, d in deleted[:_DETAIL_LIMIT]],
                        "skipped": [f"{r}@{d}" for r, d in skipped[:_DETAIL_LIMIT]]},
            ),
            events=[summary],
        )  # fmt: skip
        log_events([summary])
        return RetentionResult(plan, deleted, skipped, freed, run)

    async def plan_async(self, scope: Scope) -> RetentionPlan:
        return await self._run(self.plan, scope)

    async def run(self, scope: Scope, *, actor: Actor, trigger: str = "api") -> RetentionResult:
        return await self._run(self.apply, scope, actor=actor, trigger=trigger)

    def run_scheduled(self) -> list[RetentionResult]:
        """Every policy's scope, once (the leader's scheduled job). A repository policy inside a
        compartment that has one too is covered by the compartment's run (its own policy wins there)."""
        scopes = self._store.policy_scopes()
        compartments = {s.name for s in scopes if s.kind == "compartment"}
        results = []
        for scope in scopes:
            if scope.kind == "repository" and split_compartment(scope.name)[0] in compartments:
                continue
            results.append(self.apply(scope, trigger="schedule"))
        return results
