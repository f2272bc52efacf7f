"""``/api/v1/replication``: targets, rules, running a rule, and the executions record. Every
operation needs registry admin (``registry.configure`` on the registry): a rule copies any
repository it names to another registry, and a target holds credentials."""

from __future__ import annotations

import re

from modelyard.api.admin.framework import LIMIT, PAGE_NUMBER, Call, Operation, QueryParam
from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.replication import ExecutionRecord, NewRule, RuleRecord, TargetRecord
from modelyard.policy.authorizer import Permission
from modelyard.schemas import replication as schemas

ADMIN = Permission.REGISTRY_CONFIGURE


def _target(record: TargetRecord) -> schemas.Target:
    return schemas.Target(
        id=record.id, name=record.name, url=record.url, username=record.username, has_password=record.has_secret,
        tls_verify=record.tls_verify, has_ca=record.has_ca, created_by=record.created_by,
        created_at=record.created_at,
    )  # fmt: skip


def _rule(record: RuleRecord) -> schemas.Rule:
    return schemas.Rule(
        id=record.id, name=record.name, target=record.target_name, repositories=record.repositories,
        tags=record.tags, destination_prefix=record.destination_prefix, on_push=record.on_push,
        interval_seconds=record.interval_seconds, mirror_deletes=record.mirror_deletes, enabled=record.enabled,
        last_scheduled_at=record.last_scheduled_at, created_by=record.created_by, created_at=record.created_at,
    )  # fmt: skip


def _execution(record: ExecutionRecord, rules: dict[int, str]) -> schemas.Execution:
    c = record.counts
    return schemas.Execution(
        id=record.id, rule=rules.get(record.rule_id, str(record.rule_id)), trigger=record.trigger,
        scope=record.scope, status=record.status, started_at=record.started_at, finished_at=record.finished_at,
        duration_seconds=record.duration_seconds, manifests_copied=c.manifests_copied,
        manifests_skipped=c.manifests_skipped, blobs_copied=c.blobs_copied, blobs_mounted=c.blobs_mounted,
        blobs_skipped=c.blobs_skipped, deleted=c.tags_deleted, bytes_copied=c.bytes_copied, error=record.error,
    )  # fmt: skip


async def _admin(call: Call) -> None:
    await call.require(ADMIN, "registry")


async def create_target(call: Call) -> schemas.Target:
    await _admin(call)
    body: schemas.TargetCreate = call.body
    record = await call.registry.replication.create_target(
        body.name, body.url, body.username, body.password, tls_verify=body.tls_verify, ca_pem=body.ca_pem,
        actor=call.actor,
    )  # fmt: skip
    return _target(record)


async def list_targets(call: Call) -> schemas.TargetList:
    await _admin(call)
    return schemas.TargetList(items=[_target(t) for t in await call.registry.read(call.registry.replication.targets)])


async def show_target(call: Call) -> schemas.Target:
    await _admin(call)
    return _target(await call.registry.read(call.registry.replication.target, call.path("target")))


async def delete_target(call: Call) -> None:
    await _admin(call)
    await call.registry.replication.delete_target(call.path("target"), actor=call.actor)


async def create_rule(call: Call) -> schemas.Rule:
    await _admin(call)
    body: schemas.RuleCreate = call.body
    rule = NewRule(**body.model_dump())
    return _rule(await call.registry.replication.create_rule(rule, actor=call.actor))


async def list_rules(call: Call) -> schemas.RuleList:
    await _admin(call)
    return schemas.RuleList(items=[_rule(r) for r in await call.registry.read(call.registry.replication.rules)])


async def show_rule(call: Call) -> schemas.Rule:
    await _admin(call)
    return _rule(await call.registry.read(call.registry.replication.rule, call.path("rule")))


async def update_rule(call: Call) -> schemas.Rule:
    await _admin(call)
    body: schemas.RuleUpdate = call.body
    return _rule(await call.registry.replication.enable_rule(call.path("rule"), body.enabled))


async def delete_rule(call: Call) -> None:
    await _admin(call)
    await call.registry.replication.delete_rule(call.path("rule"), actor=call.actor)


async def run_rule(call: Call) -> schemas.Execution:
    await _admin(call)
    name = call.path("rule")
    body: schemas.RunRequest = call.body
    record = await call.registry.replication.run_now(name, wait=body.wait)
    return _execution(record, {record.rule_id: name})


async def list_executions(call: Call) -> schemas.ExecutionPage:
    await _admin(call)
    service = call.registry.replication
    limit = call.limit()
    rule = call.request.query.get("rule")
    if rule is not None and not re.fullmatch(schemas.NAME_PATTERN, rule):
        raise ValidationFailed([("rule", "must be a rule's name")])

    def read() -> tuple[list[ExecutionRecord], dict[int, str]]:
        return service.executions(rule, limit + 1, call.page_number()), {r.id: r.name for r in service.rules()}

    found, names = await call.registry.read(read)
    items = [_execution(e, names) for e in found[:limit]]
    return schemas.ExecutionPage(items=items, next_page=str(items[-1].id) if len(found) > limit else None)


async def show_execution(call: Call) -> schemas.Execution:
    await _admin(call)
    raw = call.path("execution_id")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise RegistryError(ErrorCode.NOT_FOUND, f"execution {raw[:40]!r} does not exist")
    service = call.registry.replication

    def read() -> tuple[ExecutionRecord, dict[int, str]]:
        return service.execution(int(raw)), {r.id: r.name for r in service.rules()}

    record, names = await call.registry.read(read)
    return _execution(record, names)


RULE_FILTER = QueryParam("rule", "string", "Only this rule's executions.", pattern=schemas.NAME_PATTERN)
BASE = "/api/v1/replication"
TARGET = BASE + "/targets/{target}"
RULE = BASE + "/rules/{rule}"

OPERATIONS = [
    Operation("POST", BASE + "/targets", "createReplicationTarget", "Register a target registry", "replication",
              create_target, body=schemas.TargetCreate, response=schemas.Target, status=201,
              errors=(401, 403, 409, 422)),
    Operation("GET", BASE + "/targets", "listReplicationTargets", "Target registries", "replication", list_targets,
              response=schemas.TargetList, errors=(401, 403)),
    Operation("GET", TARGET, "getReplicationTarget", "One target", "replication", show_target,
              response=schemas.Target, errors=(401, 403, 404)),
    Operation("DELETE", TARGET, "deleteReplicationTarget", "Delete a target with its rules", "replication",
              delete_target, status=204, errors=(401, 403, 404)),
    Operation("POST", BASE + "/rules", "createReplicationRule", "Create a replication rule", "replication",
              create_rule, body=schemas.RuleCreate, response=schemas.Rule, status=201,
              errors=(401, 403, 404, 409, 422)),
    Operation("GET", BASE + "/rules", "listReplicationRules", "Replication rules", "replication", list_rules,
              response=schemas.RuleList, errors=(401, 403)),
    Operation("GET", RULE, "getReplicationRule", "One rule", "replication", show_rule, response=schemas.Rule,
              errors=(401, 403, 404)),
    Operation("PATCH", RULE, "updateReplicationRule", "Switch a rule on or off", "replication", update_rule,
              body=schemas.RuleUpdate, response=schemas.Rule, errors=(401, 403, 404, 422)),
    Operation("DELETE", RULE, "deleteReplicationRule", "Delete a rule and its executions", "replication",
              delete_rule, status=204, errors=(401, 403, 404)),
    Operation("POST", RULE + "/run", "runReplicationRule", "Run a full pass of a rule now", "replication",
              run_rule, body=schemas.RunRequest, response=schemas.Execution, status=202, errors=(401, 403, 404, 422)),
    Operation("GET", BASE + "/executions", "listReplicationExecutions", "Executions, newest first",
              "replication", list_executions, response=schemas.ExecutionPage, query=(RULE_FILTER, LIMIT, PAGE_NUMBER),
              errors=(401, 403, 404, 422)),
    Operation("GET", BASE + "/executions/{execution_id}", "getReplicationExecution", "One execution",
              "replication", show_execution, response=schemas.Execution, errors=(401, 403, 404)),
]  # fmt: skip
