"""Retention policies, plans and runs; quotas and usage; gc and retention run records.

Routes: ``/api/v1/repositories/{name}/-/retention`` and ``/-/quota``,
``/api/v1/compartments/{name}/retention`` and ``/quota``, ``POST /api/v1/retention/plan`` and
``/run``, ``GET /api/v1/usage``, ``GET /api/v1/gc/runs`` and ``/api/v1/retention/runs``.

Who may: a repository's retention is its repoAdmin's (configure it; delete to run it), a
compartment's needs the same permissions bound on the compartment. Quotas are set by registry
administrators only (a repoAdmin must not raise their own), and read by whoever may read what
they bind.
"""

from __future__ import annotations

from modelyard.api.admin.framework import LIMIT, PAGE_NUMBER, Call, Operation, QueryParam
from modelyard.domain.lifecycle import MaintenanceRun, RetentionPolicy, Scope, Usage
from modelyard.policy.authorizer import Permission
from modelyard.schemas import lifecycle as schemas
from modelyard.services.lifecycle.retention import RetentionPlan

COUNTING = (
    "charged: each blob once, to the repository holding its oldest link, plus the repository's manifests "
    "(what quotas count; sums to the stored bytes); logical: every blob referenced, shared or not; "
    "exclusive: blobs no other repository (compartment) holds"
)


def _scope(call: Call) -> Scope:
    if "repository" in call.request.match_info:
        return Scope("repository", call.path("repository"))
    return Scope("compartment", call.path("compartment_id"))


async def _require(call: Call, permission: Permission, scope: Scope) -> None:
    await call.require(permission, scope.kind, scope.name)


def _policy_view(scope: Scope, policy: RetentionPolicy) -> schemas.RetentionPolicy:
    return schemas.RetentionPolicy(
        scope=str(scope), keep_last=policy.keep_last, keep_days=policy.keep_days, keep_tags=list(policy.keep_tags),
        alias_window_days=policy.alias_window_days, updated_at=policy.updated_at, updated_by=policy.updated_by,
    )  # fmt: skip


def _not_found(scope: Scope, what: str) -> Exception:
    from modelyard.domain.errors import ErrorCode, RegistryError

    return RegistryError(ErrorCode.NOT_FOUND, f"{scope} has no {what}", detail={"scope": str(scope)})


# -- retention policies -------------------------------------------------------------------


async def get_policy(call: Call) -> schemas.RetentionPolicy:
    scope = _scope(call)
    await _require(call, Permission.PULL if scope.kind == "repository" else Permission.CATALOG, scope)
    policy = await call.registry.read(call.registry.lifecycle.retention.policy, scope)
    if policy is None:
        raise _not_found(scope, "retention policy")
    return _policy_view(scope, policy)


async def set_policy(call: Call) -> schemas.RetentionPolicy:
    scope = _scope(call)
    await _require(call, Permission.CONFIGURE, scope)
    body: schemas.RetentionPolicyBody = call.body
    policy = RetentionPolicy(body.keep_last, body.keep_days, tuple(body.keep_tags), body.alias_window_days)
    stored = await call.registry.lifecycle.retention.set_policy(scope, policy, actor=call.actor)
    return _policy_view(scope, stored)


async def delete_policy(call: Call) -> None:
    scope = _scope(call)
    await _require(call, Permission.CONFIGURE, scope)
    await call.registry.lifecycle.retention.delete_policy(scope, actor=call.actor)


# -- plans and runs -------------------------------------------------------------------------


async def _target(call: Call, permission: Permission) -> Scope:
    body: schemas.RetentionTarget = call.body
    scope = Scope("repository", body.repository) if body.repository else Scope("compartment", str(body.compartment))
    await _require(call, permission, scope)
    return scope


def plan_view(plan: RetentionPlan) -> schemas.RetentionPlan:
    versions = [
        schemas.PlannedVersion(
            repository=repo.repository,
            digest=d.version.digest,
            tags=list(d.version.tags),
            size=d.version.size,
            pushed_at=d.version.created_at,
            last_pulled_at=d.version.last_pulled_at,
            action="delete" if d.delete else "keep",
            reasons=list(d.reasons),
        )
        for repo in plan.repositories
        for d in repo.decisions
    ]
    repos = [
        schemas.RepositoryRetention(
            repository=repo.repository,
            policy_scope=str(repo.policy_scope),
            delete_count=len(repo.deletions),
            keep_count=len(repo.decisions) - len(repo.deletions),
        )
        for repo in plan.repositories
    ]
    return schemas.RetentionPlan(
        scope=str(plan.scope), at=plan.at, delete_count=len(plan.deletions), freed_bytes=plan.freed_bytes,
        manifest_bytes=plan.manifest_bytes, repositories=repos, versions=versions,
    )  # fmt: skip


async def plan_retention(call: Call) -> schemas.RetentionPlan:
    scope = await _target(call, Permission.CONFIGURE)
    return plan_view(await call.registry.lifecycle.retention.plan_async(scope))


async def run_retention(call: Call) -> schemas.RetentionRun:
    scope = await _target(call, Permission.DELETE)
    result = await call.registry.lifecycle.retention.run(scope, actor=call.actor, trigger="api")
    return schemas.RetentionRun(
        scope=str(scope), run_id=None if result.run is None else result.run.id,
        deleted=[f"{r}@{d}" for r, d in result.deleted], skipped=[f"{r}@{d}" for r, d in result.skipped],
        freed_bytes=result.freed_bytes,
    )  # fmt: skip


# -- quotas and usage -----------------------------------------------------------------------


async def get_quota(call: Call) -> schemas.Quota:
    scope = _scope(call)
    await _require(call, Permission.PULL if scope.kind == "repository" else Permission.CATALOG, scope)
    quotas = call.registry.lifecycle.quotas
    quota = await call.registry.read(quotas.get, scope)
    if quota is None:
        raise _not_found(scope, "quota")
    usage = await call.registry.read(quotas.charged, scope)
    return schemas.Quota(scope=str(scope), limit_bytes=quota.limit_bytes, usage_bytes=usage,
                         updated_at=quota.updated_at, updated_by=quota.updated_by)  # fmt: skip


async def set_quota(call: Call) -> schemas.Quota:
    scope = _scope(call)
    await call.require(Permission.REGISTRY_CONFIGURE)
    body: schemas.QuotaBody = call.body
    quotas = call.registry.lifecycle.quotas
    quota = await quotas.set(scope, body.limit_bytes, actor=call.actor)
    usage = await call.registry.read(quotas.charged, scope)
    return schemas.Quota(scope=str(scope), limit_bytes=quota.limit_bytes, usage_bytes=usage,
                         updated_at=quota.updated_at, updated_by=quota.updated_by)  # fmt: skip


async def delete_quota(call: Call) -> None:
    await call.require(Permission.REGISTRY_CONFIGURE)
    await call.registry.lifecycle.quotas.delete(_scope(call), actor=call.actor)


def _usage_item(usage: Usage) -> schemas.UsageItem:
    return schemas.UsageItem(
        name=usage.name, charged_bytes=usage.charged_bytes, logical_bytes=usage.logical_bytes,
        exclusive_bytes=usage.exclusive_bytes, quota_bytes=usage.quota,
    )  # fmt: skip


async def get_usage(call: Call) -> schemas.Usage:
    compartment = call.query_str("compartment")
    if compartment is None:
        await call.require(Permission.REGISTRY_CONFIGURE)
    else:
        await call.require(Permission.CONFIGURE, "compartment", compartment)
    report = await call.registry.read(call.registry.lifecycle.quotas.usage, compartment)
    return schemas.Usage(
        counting=COUNTING,
        compartments=[_usage_item(u) for u in report.compartments],
        repositories=[_usage_item(u) for u in report.repositories],
    )


# -- run records ----------------------------------------------------------------------------


def _run_view(run: MaintenanceRun) -> schemas.MaintenanceRun:
    return schemas.MaintenanceRun(
        id=run.id, kind=run.kind, trigger=run.trigger, actor=run.actor, scope=run.scope, started_at=run.started_at,
        finished_at=run.finished_at, removed=run.removed, freed_bytes=run.freed_bytes, detail=run.detail,
        error=run.error,
    )  # fmt: skip


def _runs(kind: str) -> Operation:
    async def list_runs(call: Call) -> schemas.MaintenanceRunPage:
        await call.require(Permission.AUDIT_READ)
        limit = call.limit()
        runs = await call.registry.read(call.registry.lifecycle.maintenance.runs, kind, limit + 1, call.page_number())
        items = [_run_view(r) for r in runs[:limit]]
        return schemas.MaintenanceRunPage(items=items, next_page=str(items[-1].id) if len(runs) > limit else None)

    return Operation(
        "GET", f"/api/v1/{kind}/runs", f"list{kind.capitalize()}Runs", f"Recorded {kind} runs, newest first",
        "lifecycle", list_runs, response=schemas.MaintenanceRunPage, query=(LIMIT, PAGE_NUMBER), errors=(422,),
    )  # fmt: skip


REPO = "/api/v1/repositories/{repository:.+}/-"
COMP = "/api/v1/compartments/{compartment_id}"
TAG = "lifecycle"


def _owned(base: str) -> list[Operation]:
    noun = "repository" if base == REPO else "compartment"
    suffix = noun.capitalize()
    return [
        Operation("GET", f"{base}/retention", f"get{suffix}Retention", f"Get a {noun}'s retention policy", TAG,
                  get_policy, response=schemas.RetentionPolicy, errors=(404,)),
        Operation("PUT", f"{base}/retention", f"set{suffix}Retention", f"Set a {noun}'s retention policy", TAG,
                  set_policy, body=schemas.RetentionPolicyBody, response=schemas.RetentionPolicy),
        Operation("DELETE", f"{base}/retention", f"delete{suffix}Retention", f"Remove a {noun}'s retention policy",
                  TAG, delete_policy, status=204, errors=(404,)),
        Operation("GET", f"{base}/quota", f"get{suffix}Quota", f"Get a {noun}'s quota and usage", TAG, get_quota,
                  response=schemas.Quota, errors=(404,)),
        Operation("PUT", f"{base}/quota", f"set{suffix}Quota", f"Set a {noun}'s quota (administrators)", TAG,
                  set_quota, body=schemas.QuotaBody, response=schemas.Quota),
        Operation("DELETE", f"{base}/quota", f"delete{suffix}Quota", f"Remove a {noun}'s quota", TAG, delete_quota,
                  status=204, errors=(404,)),
    ]  # fmt: skip


OPERATIONS = [
    *_owned(REPO),
    *_owned(COMP),
    Operation("POST", "/api/v1/retention/plan", "planRetention",
              "Dry run: what retention would delete now, why the rest stays, the unique bytes freed", TAG,
              plan_retention, body=schemas.RetentionTarget, response=schemas.RetentionPlan),
    Operation("POST", "/api/v1/retention/run", "runRetention", "Run retention now (deletes what the plan lists)", TAG,
              run_retention, body=schemas.RetentionTarget, response=schemas.RetentionRun),
    Operation("GET", "/api/v1/usage", "getUsage", "Stored bytes per compartment and repository, with quotas", TAG,
              get_usage, response=schemas.Usage, errors=(422,),
              query=(QueryParam("compartment", "string", "Only this compartment and its repositories."),)),
    _runs("gc"),
    _runs("retention"),
]  # fmt: skip
