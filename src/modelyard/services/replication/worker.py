"""The replication job of the background-work leader (``workers.py``). Its first tick in a
process marks on-push and scheduled executions still ``running`` as failed: only a leader runs
them, so they are a stopped leader's (their tasks are still pending and are retried). Each tick:

1. **Dispatch** (a thread): outbox events after this consumer's cursor become tasks, one per
   (on-push rule that selects it, event), unique, in the transaction that moves the cursor, so
   reading an event twice queues nothing twice. A pushed tag (or an alias set or rolled back
   through the admin API) the rule selects is a ``copy``; a
   manifest pushed by digest alone is a ``copy`` of a referrer; with ``mirror_deletes`` a
   deleted tag or manifest is a ``delete``. A rule gets only events from after its creation.
   The cursor moves over gaps in row ids as ``services/outbox.py`` says (webhooks read alike).
2. **On-push**: due tasks, one execution per rule per tick (its scope lists the tasks). A task
   that fails is due again after back-off (``replication_retry_base`` doubling up to
   ``replication_retry_max``), and fails for good after ``replication_max_attempts`` tries.
   The retry resumes: what reached the target before is skipped (``engine.py``).
   A rule that is disabled drops its queued tasks (they fail with a note saying so): an admin
   who switches a rule off because it does the wrong thing stops it now, queued deletes
   included; a manual run after enabling it again catches up.
3. **Schedule**: each enabled rule with ``interval_seconds`` whose last scheduled run started
   that long ago gets a full pass.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from modelyard.domain.events import AliasMoved, Event, ManifestDeleted, ManifestPushed, TagDeleted
from modelyard.domain.replication import NewTask, RuleRecord, TaskRecord, backoff_seconds
from modelyard.metadata.clock import utcnow
from modelyard.services.outbox import Outbox, consume
from modelyard.services.replication.engine import Run
from modelyard.services.replication.service import ReplicationService, full_pass
from modelyard.services.runner import BlockingRunner

log = logging.getLogger("modelyard.replication")

CONSUMER = "replication"
TASKS_PER_TICK = 200
DISABLED = "cancelled: the rule was disabled (enable it and run it for what it missed)"
INTERRUPTED = "interrupted: the server running it stopped before it ended (its tasks are retried)"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float
    cap: float
    max_attempts: int


def task_for(rule: RuleRecord, row_id: int, event: Event) -> NewTask | None:
    """The task an outbox event makes for a rule, if any."""
    repository = getattr(event, "repository", None)
    if not rule.enabled or not rule.on_push or not isinstance(repository, str):
        return None
    if not rule.wants_repository(repository) or event.time < rule.created_at:
        return None
    if isinstance(event, ManifestPushed):
        if event.tag is None:
            return NewTask(rule.id, row_id, "referrer", repository, event.digest)
        return NewTask(rule.id, row_id, "copy", repository, event.tag) if rule.wants_tag(event.tag) else None
    if isinstance(event, AliasMoved):  # set or rolled back through the admin API, no /v2 push
        return NewTask(rule.id, row_id, "copy", repository, event.alias) if rule.wants_tag(event.alias) else None
    if rule.mirror_deletes and isinstance(event, TagDeleted) and rule.wants_tag(event.tag):
        return NewTask(rule.id, row_id, "delete", repository, event.tag)
    if rule.mirror_deletes and isinstance(event, ManifestDeleted) and covered_delete(rule, event):
        return NewTask(rule.id, row_id, "delete", repository, event.digest)
    return None


def covered_delete(rule: RuleRecord, event: ManifestDeleted) -> bool:
    """Whether a manifest deleted by digest is one the rule covers: every tag (``*``), or one of
    the tags it had when it went (retention says them) is selected. A manifest under no selected
    tag -- a ``dev-*`` build retention removed, for a ``release-*`` rule -- is not the rule's to
    delete on the target, where it may be tagged by someone else."""
    return rule.tags == "*" or any(rule.wants_tag(tag) for tag in event.tags)


class ReplicationWorker:
    def __init__(
        self, service: ReplicationService, outbox: Outbox, runner: BlockingRunner, policy: RetryPolicy
    ) -> None:
        self.service = service
        self._store = service.store
        self._outbox = outbox
        self._run = runner.run
        self.policy = policy
        self._began = False

    def dispatch(self) -> int:
        """Turn new outbox events into tasks; how many were made."""

        def mapper() -> Callable[[int, Event], list[NewTask]]:
            rules = [rule for rule in self._store.rules() if rule.enabled and rule.on_push]
            return lambda row_id, event: [t for rule in rules if (t := task_for(rule, row_id, event)) is not None]

        def commit(position: int, tasks: list[NewTask]) -> int:
            return self._store.add_tasks(CONSUMER, position, tasks)

        return consume(self._outbox, lambda: self._store.cursor(CONSUMER), mapper, commit)

    async def tick(self) -> None:
        if not self._began:
            # The leader's own executions still "running" are a stopped leader's: say so once.
            await self._run(self._store.interrupt, ("on_push", "schedule"), INTERRUPTED)
            self._began = True
        await self._run(self.dispatch)
        await self._on_push()
        await self._scheduled()

    def _due(self) -> list[TaskRecord]:
        """Due tasks, less the manifests pushed by digest that refer to nothing (an index's
        children: they go with their index's tag), which are done here without an execution."""
        due = []
        for task in self._store.due_tasks(utcnow(), TASKS_PER_TICK):
            if task.action == "referrer" and not self.service.replicator.is_referrer(task.repository, task.reference):
                self._store.finish_task(task.id, None, None)
            else:
                due.append(task)
        return due

    async def _on_push(self) -> None:
        by_rule: dict[int, list[TaskRecord]] = defaultdict(list)
        for task in await self._run(self._due):
            by_rule[task.rule_id].append(task)
        for rule_id, tasks in by_rule.items():
            rule = await self._run(self._store.rule_by_id, rule_id)
            if rule is None:
                continue
            if not rule.enabled:  # switched off with work queued: that work is dropped, deletes above all
                for task in tasks:
                    await self._run(self._store.finish_task, task.id, DISABLED, None)
                continue
            scope = ", ".join(f"{t.action} {t.repository}:{t.reference}" for t in tasks)  # start() cuts it
            execution_id = await self.service.start(rule, "on_push", scope)

            handled: set[int] = set()

            async def work(run: Run, tasks: list[TaskRecord] = tasks, handled: set[int] = handled) -> None:
                first: Exception | None = None
                for task in tasks:
                    try:
                        await self._one(run, task)
                    except Exception as exc:  # this task is retried; the others still go
                        first = first or exc
                        await self._run(self._failed, task, f"{type(exc).__name__}: {exc}"[:2000])
                    else:
                        await self._run(self._store.finish_task, task.id, None, None)
                    handled.add(task.id)
                if first is not None:
                    raise first

            record = await self.service.execute(rule, execution_id, "on_push", work)
            for task in tasks:  # the execution failed before them (the target's secret, say): back off too
                if task.id not in handled:
                    await self._run(self._failed, task, record.error or "the execution ended before this task")

    async def _one(self, run: Run, task: TaskRecord) -> None:
        replicator = self.service.replicator
        if task.action == "copy":
            await replicator.copy_tag(run, task.repository, task.reference)
        elif task.action == "referrer":
            await replicator.copy_referrer(run, task.repository, task.reference)
        elif task.action == "delete":
            await replicator.delete(run, task.repository, task.reference)

    def _failed(self, task: TaskRecord, error: str) -> None:
        attempt = task.attempts + 1
        retry_at = None
        if attempt < self.policy.max_attempts:
            retry_at = utcnow() + timedelta(seconds=backoff_seconds(attempt, self.policy.base, self.policy.cap))
        self._store.finish_task(task.id, error, retry_at)

    async def _scheduled(self) -> None:
        now = utcnow()
        for rule in await self._run(self._store.rules):
            if not rule.enabled or rule.interval_seconds is None:
                continue
            last = rule.last_scheduled_at
            if last is not None and now - last < timedelta(seconds=rule.interval_seconds):
                continue
            await self._run(self._store.mark_scheduled, rule.id, now)
            execution_id = await self.service.start(rule, "schedule", full_pass(rule))
            await self.service.execute(rule, execution_id, "schedule", self.service.replicator.sync)

    async def close(self) -> None:
        await self.service.close()
