"""The replication store (``metadata/sql_replication.py``) on SQLite and PostgreSQL: names are
unique, a rule needs its target, on-push tasks are queued once per rule and event with the
cursor moved in the same transaction, a task's states, executions with their counts, and a
target deleted with its rules, their tasks and executions."""

from __future__ import annotations

from datetime import timedelta

from modelyard.domain.replication import Counts, NewRule, NewTask
from modelyard.metadata.clock import utcnow
from modelyard.metadata.sql import SqlMetadataStore
from modelyard.metadata.sql_replication import SqlReplication


def test_targets_rules_tasks_and_executions(store: SqlMetadataStore) -> None:
    repl = SqlReplication(store)
    target = repl.create_target("dr", "https://dr.example", "bot", "v1.sealed", True, None, "user:admin")
    assert target is not None and target.has_secret and not target.has_ca
    assert repl.create_target("dr", "https://other.example", None, None, True, None, None) is None
    assert repl.target_secrets(target.id) == ("v1.sealed", None)

    assert repl.create_rule(NewRule("r", "nope", "acme/*"), None) == "target"
    rule = repl.create_rule(NewRule("r", "dr", "acme/*", tags="v*", mirror_deletes=True), "user:admin")
    assert not isinstance(rule, str) and rule.target_name == "dr" and rule.wants_tag("v1")
    assert repl.create_rule(NewRule("r", "dr", "x"), None) == "name"
    assert [r.name for r in repl.rules()] == ["r"] and repl.rule_by_id(rule.id) == repl.rule("r")

    tasks = [NewTask(rule.id, 7, "copy", "acme/llm", "v1"), NewTask(rule.id, 8, "delete", "acme/llm", "v0")]
    assert repl.add_tasks("replication", 8, tasks) == 2
    assert repl.add_tasks("replication", 8, tasks) == 0  # the same events read again queue nothing
    assert repl.cursor("replication") == 8
    due = repl.due_tasks(utcnow() + timedelta(seconds=1), 10)
    assert [(t.event_id, t.state) for t in due] == [(7, "pending"), (8, "pending")]
    repl.finish_task(due[0].id, None, None)
    repl.finish_task(due[1].id, "refused", utcnow() + timedelta(hours=1))
    assert repl.due_tasks(utcnow() + timedelta(seconds=1), 10) == [] and repl.pending_tasks() == 1
    repl.finish_task(due[1].id, "refused again", None)
    assert repl.pending_tasks() == 0

    execution = repl.start_execution(rule.id, "manual", None)
    assert repl.executions(None, 10, None)[0].status == "running"
    counts = Counts(manifests_copied=2, blobs_copied=3, bytes_copied=5 << 32)
    repl.finish_execution(execution, "succeeded", counts, None)
    record = repl.execution(execution)
    assert record is not None and record.counts == counts and record.duration_seconds is not None
    assert [e.id for e in repl.executions(rule.id, 10, None)] == [execution]
    assert repl.executions(rule.id, 10, execution) == []

    left = repl.start_execution(rule.id, "on_push", "copy acme/llm:v1")
    manual = repl.start_execution(rule.id, "manual", None)
    assert repl.interrupt(("on_push", "schedule"), "interrupted") == 1
    stale, running = repl.execution(left), repl.execution(manual)
    assert stale is not None and (stale.status, stale.error) == ("failed", "interrupted") and stale.finished_at
    assert running is not None and running.status == "running"

    repl.mark_scheduled(rule.id, utcnow())
    assert repl.rule("r") is not None and repl.rule("r").last_scheduled_at is not None  # type: ignore[union-attr]
    assert repl.delete_target("dr") and not repl.delete_target("dr")
    assert repl.rules() == [] and repl.execution(execution) is None and repl.targets() == []
