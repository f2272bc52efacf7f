"""Managing replication (targets, rules, executions) and running one execution.

Who may do it is the API's check (registry admin); the rules on what a target or rule may say
are ``domain/replication.py``'s. A target's password or token is sealed with the server's
secret box before it is stored and opened only to talk to the target; no record, event or log
line carries it.

An execution is a row written when it starts (``running``) and completed when it ends, with
its counts and the first error: the API and ``modelyard replication executions`` show both, and
:class:`ReplicationFinished` goes to the outbox so webhooks can announce it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from modelyard import metrics
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.events import (
    Actor,
    ReplicationFinished,
    ReplicationRuleCreated,
    ReplicationRuleDeleted,
    ReplicationTargetCreated,
    ReplicationTargetDeleted,
)
from modelyard.domain.replication import (
    SECRET_PURPOSE,
    Counts,
    ExecutionRecord,
    NewRule,
    RuleRecord,
    TargetAccess,
    TargetRecord,
    fit_scope,
    validate_name,
    validate_rule,
    validate_target_url,
)
from modelyard.metadata.sql_replication import SqlReplication
from modelyard.services.audit import log_events
from modelyard.services.replication.engine import Replicator, Run, TargetClient
from modelyard.services.runner import BlockingRunner
from modelyard.services.secretbox import SecretBox

log = logging.getLogger("modelyard.replication")

#: Builds a client for a target (``egress/oci_push.target_client``), with a per-request timeout.
ClientFactory = Callable[[TargetAccess, float], TargetClient]
SYSTEM = Actor("system:replication")
MAX_ERROR = 2000


def full_pass(rule: RuleRecord) -> str:
    """What a full pass covers, as an execution's scope (cut to the column: two 300-character
    patterns make more than its 600, which PostgreSQL refuses)."""
    text = f"every tag {rule.tags} of {rule.repositories}" + (" (deletes mirrored)" if rule.mirror_deletes else "")
    return fit_scope(text)


def not_found(kind: str, name: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"replication {kind} {name!r} does not exist", detail={kind: name})


class ReplicationService:
    def __init__(
        self,
        store: SqlReplication,
        replicator: Replicator,
        box: SecretBox,
        runner: BlockingRunner,
        clients: ClientFactory,
        *,
        timeout: float,
    ) -> None:
        self.store = store
        self.replicator = replicator
        self._box = box
        self._run = runner.run
        self._clients = clients
        self._timeout = timeout
        self._manual: set[asyncio.Task[ExecutionRecord]] = set()

    # -- targets -----------------------------------------------------------------------------

    async def create_target(
        self, name: str, url: str, username: str | None, password: str | None, *, tls_verify: bool = True,
        ca_pem: str | None = None, actor: Actor,
    ) -> TargetRecord:  # fmt: skip
        validate_name(name)
        url = validate_target_url(url)
        sealed = self._box.seal(password, SECRET_PURPOSE) if password else None
        event = ReplicationTargetCreated(actor=actor, target=name, url=url)
        record = await self._run(
            self.store.create_target, name, url, username or None, sealed, tls_verify, ca_pem or None, actor.subject,
            events=[event],
        )  # fmt: skip
        if record is None:
            raise RegistryError(ErrorCode.CONFLICT, f"replication target {name!r} exists", detail={"target": name})
        log_events([event])
        return record

    def target(self, name: str) -> TargetRecord:
        record = self.store.target(name)
        if record is None:
            raise not_found("target", name)
        return record

    def targets(self) -> list[TargetRecord]:
        return self.store.targets()

    async def delete_target(self, name: str, *, actor: Actor) -> None:
        """Delete a target with its rules and their executions."""
        event = ReplicationTargetDeleted(actor=actor, target=name)
        if not await self._run(self.store.delete_target, name, events=[event]):
            raise not_found("target", name)
        log_events([event])

    def access(self, target_id: int, record: TargetRecord) -> TargetAccess:
        sealed, ca_pem = self.store.target_secrets(target_id)
        password = self._box.open(sealed, SECRET_PURPOSE) if sealed else None
        return TargetAccess(record.url, record.username, password, record.tls_verify, ca_pem)

    # -- rules -------------------------------------------------------------------------------

    async def create_rule(self, rule: NewRule, *, actor: Actor) -> RuleRecord:
        rule = validate_rule(rule)
        event = ReplicationRuleCreated(
            actor=actor, rule=rule.name, target=rule.target, repositories=rule.repositories, tags=rule.tags
        )
        created = await self._run(self.store.create_rule, rule, actor.subject, events=[event])
        if created == "target":
            raise not_found("target", rule.target)
        if isinstance(created, str):
            raise RegistryError(
                ErrorCode.CONFLICT, f"replication rule {rule.name!r} exists", detail={"rule": rule.name}
            )
        log_events([event])
        return created

    def rule(self, name: str) -> RuleRecord:
        record = self.store.rule(name)
        if record is None:
            raise not_found("rule", name)
        return record

    def rules(self) -> list[RuleRecord]:
        return self.store.rules()

    async def enable_rule(self, name: str, enabled: bool) -> RuleRecord:
        """Switch a rule on or off: off, it queues no on-push work and runs on no schedule (a
        manual run still goes)."""
        record = await self._run(self.store.set_enabled, name, enabled)
        if record is None:
            raise not_found("rule", name)
        return record

    async def delete_rule(self, name: str, *, actor: Actor) -> None:
        event = ReplicationRuleDeleted(actor=actor, rule=name)
        if not await self._run(self.store.delete_rule, name, events=[event]):
            raise not_found("rule", name)
        log_events([event])

    # -- executions --------------------------------------------------------------------------

    def executions(self, rule: str | None, limit: int, before_id: int | None) -> list[ExecutionRecord]:
        rule_id = self.rule(rule).id if rule is not None else None
        return self.store.executions(rule_id, limit, before_id)

    def execution(self, execution_id: int) -> ExecutionRecord:
        record = self.store.execution(execution_id)
        if record is None:
            raise not_found("execution", str(execution_id))
        return record

    async def start(self, rule: RuleRecord, trigger: str, scope: str | None) -> int:
        fitted = fit_scope(scope) if scope is not None else None
        return await self._run(self.store.start_execution, rule.id, trigger, fitted)

    async def execute(
        self, rule: RuleRecord, execution_id: int, trigger: str, work: Callable[[Run], Awaitable[None]]
    ) -> ExecutionRecord:
        """Run ``work`` against the rule's target and record how it went (never raises for a
        failed copy: the record says it)."""
        began = time.monotonic()
        error: str | None = None
        run: Run | None = None
        try:
            target = await self._run(self.target, rule.target_name)
            access = await self._run(self.access, rule.target_id, target)
            client = self._clients(access, self._timeout)
            run = Run(rule, client)
            try:
                await work(run)
            finally:
                await client.aclose()
        except asyncio.CancelledError:
            self._finish(rule, execution_id, trigger, run, "the server stopped during the execution")
            raise
        except Exception as exc:  # any failure of a copy is the execution's outcome, recorded
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        await self._run(self._finish, rule, execution_id, trigger, run, error)
        log.info(
            "replication %s (%s) execution %d %s in %.1f s", rule.name, trigger, execution_id,
            "failed: " + error if error else "succeeded", time.monotonic() - began,
        )  # fmt: skip
        return await self._run(self.execution, execution_id)

    def _finish(self, rule: RuleRecord, execution_id: int, trigger: str, run: Run | None, error: str | None) -> None:
        status = "failed" if error else "succeeded"
        counts = run.counts if run is not None else Counts()
        event = ReplicationFinished(
            actor=SYSTEM, rule=rule.name, target=rule.target_name, execution_id=execution_id, trigger=trigger,
            status=status, manifests_copied=counts.manifests_copied, blobs_copied=counts.blobs_copied,
            bytes_copied=counts.bytes_copied, error=error,
        )  # fmt: skip
        scope = None
        if run is not None and run.notes:  # deletes left undone: the scope says so, after what it covered
            for note in run.notes:
                log.warning("replication %s execution %d: %s", rule.name, execution_id, note)
            started = self.store.execution(execution_id)
            covered = [started.scope] if started is not None and started.scope else []
            scope = fit_scope("; ".join(covered + run.notes))
        self.store.finish_execution(execution_id, status, counts, error, events=[event], scope=scope)
        metrics.REPLICATION_RUNS.labels(outcome="success" if error is None else "failure").inc()
        log_events([event])

    async def run_now(self, name: str, *, wait: bool) -> ExecutionRecord:
        """A manual full pass of a rule: started here, awaited only with ``wait`` (else the
        record says ``running`` and the executions list shows the outcome later)."""
        rule = await self._run(self.rule, name)
        execution_id = await self.start(rule, "manual", full_pass(rule))
        task = asyncio.create_task(self.execute(rule, execution_id, "manual", self.replicator.sync))
        self._manual.add(task)
        task.add_done_callback(self._manual.discard)
        if wait:
            return await asyncio.shield(task)
        return await self._run(self.execution, execution_id)

    async def close(self) -> None:
        for task in list(self._manual):
            task.cancel()
        await asyncio.gather(*self._manual, return_exceptions=True)
