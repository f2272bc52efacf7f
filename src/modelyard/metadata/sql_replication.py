"""SQL storage of push replication (tables of migration 0015): targets, rules, executions and
the on-push task list with its outbox cursor. Records are ``domain/replication.py``'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.domain.events import Event
from modelyard.domain.replication import Counts, ExecutionRecord, NewRule, NewTask, RuleRecord, TargetRecord, TaskRecord
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.outbox import insert_events, move_cursor, read_cursor
from modelyard.metadata.sql_base import SqlPart

tg = t.replication_targets.c
ru = t.replication_rules.c
ex = t.replication_executions.c
tk = t.replication_tasks.c
COUNT_FIELDS = tuple(Counts.__dataclass_fields__)


def _maybe(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _target(row: Any) -> TargetRecord:
    return TargetRecord(
        id=row.id, name=row.name, url=row.url, username=row.username, has_secret=row.secret_ciphertext is not None,
        tls_verify=bool(row.tls_verify), has_ca=row.ca_pem is not None, created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )  # fmt: skip


def _rule(row: Any) -> RuleRecord:
    return RuleRecord(
        id=row.id, name=row.name, target_id=row.target_id, target_name=row.target_name,
        repositories=row.repositories, tags=row.tags, destination_prefix=row.destination_prefix,
        on_push=bool(row.on_push), interval_seconds=row.interval_seconds, mirror_deletes=bool(row.mirror_deletes),
        enabled=bool(row.enabled), last_scheduled_at=_maybe(row.last_scheduled_at), created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )  # fmt: skip


def _execution(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=row.id, rule_id=row.rule_id, trigger=row.trigger, scope=row.scope, status=row.status,
        started_at=as_utc(row.started_at), finished_at=_maybe(row.finished_at),
        counts=Counts(**{name: int(getattr(row, name)) for name in COUNT_FIELDS}), error=row.error,
    )  # fmt: skip


def _task(row: Any) -> TaskRecord:
    return TaskRecord(
        id=row.id, rule_id=row.rule_id, event_id=row.event_id, action=row.action, repository=row.repository,
        reference=row.reference, state=row.state, attempts=row.attempts, last_error=row.last_error,
    )  # fmt: skip


_RULES = select(t.replication_rules, tg.name.label("target_name")).join(t.replication_targets, tg.id == ru.target_id)


class SqlReplication(SqlPart):
    # -- targets ---------------------------------------------------------------------------

    def create_target(
        self, name: str, url: str, username: str | None, secret_ciphertext: str | None, tls_verify: bool,
        ca_pem: str | None, created_by: str | None, *, events: Sequence[Event] = (),
    ) -> TargetRecord | None:  # fmt: skip
        """Insert a target; ``None`` when the name is taken."""

        def work(conn: Connection) -> TargetRecord | None:
            if conn.execute(select(tg.id).where(tg.name == name)).first() is not None:
                return None
            row = conn.execute(
                insert(t.replication_targets)
                .values(
                    name=name,
                    url=url,
                    username=username,
                    secret_ciphertext=secret_ciphertext,
                    tls_verify=tls_verify,
                    ca_pem=ca_pem,
                    created_by=created_by,
                    created_at=utcnow(),
                )
                .returning(*t.replication_targets.c)
            ).one()
            insert_events(conn, events)
            return _target(row)

        return self._store.write(work)

    def targets(self) -> list[TargetRecord]:
        with self._read() as conn:
            return [_target(r) for r in conn.execute(select(t.replication_targets).order_by(tg.name))]

    def target(self, name: str) -> TargetRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.replication_targets).where(tg.name == name)).first()
        return _target(row) if row is not None else None

    def target_secrets(self, target_id: int) -> tuple[str | None, str | None]:
        """The sealed secret and the CA bundle of a target (never in a record)."""
        with self._read() as conn:
            row = conn.execute(select(tg.secret_ciphertext, tg.ca_pem).where(tg.id == target_id)).first()
        return (row.secret_ciphertext, row.ca_pem) if row is not None else (None, None)

    def delete_target(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            target_id = conn.execute(select(tg.id).where(tg.name == name)).scalar()
            if target_id is None:
                return False
            self._delete_rules(conn, select(ru.id).where(ru.target_id == target_id))
            conn.execute(delete(t.replication_targets).where(tg.id == target_id))
            insert_events(conn, events)
            return True

        return self._store.write(work)

    # -- rules -----------------------------------------------------------------------------

    def create_rule(self, rule: NewRule, created_by: str | None, *, events: Sequence[Event] = ()) -> RuleRecord | str:
        """Insert a rule; a string says why not (``"name"`` taken, ``"target"`` unknown)."""

        def work(conn: Connection) -> RuleRecord | str:
            target_id = conn.execute(select(tg.id).where(tg.name == rule.target)).scalar()
            if target_id is None:
                return "target"
            if conn.execute(select(ru.id).where(ru.name == rule.name)).first() is not None:
                return "name"
            conn.execute(
                insert(t.replication_rules).values(
                    name=rule.name,
                    target_id=target_id,
                    repositories=rule.repositories,
                    tags=rule.tags,
                    destination_prefix=rule.destination_prefix,
                    on_push=rule.on_push,
                    interval_seconds=rule.interval_seconds,
                    mirror_deletes=rule.mirror_deletes,
                    enabled=rule.enabled,
                    created_by=created_by,
                    created_at=utcnow(),
                )
            )
            insert_events(conn, events)
            return _rule(conn.execute(_RULES.where(ru.name == rule.name)).one())

        return self._store.write(work)

    def rules(self) -> list[RuleRecord]:
        with self._read() as conn:
            return [_rule(r) for r in conn.execute(_RULES.order_by(ru.name))]

    def rule(self, name: str) -> RuleRecord | None:
        with self._read() as conn:
            row = conn.execute(_RULES.where(ru.name == name)).first()
        return _rule(row) if row is not None else None

    def rule_by_id(self, rule_id: int) -> RuleRecord | None:
        with self._read() as conn:
            row = conn.execute(_RULES.where(ru.id == rule_id)).first()
        return _rule(row) if row is not None else None

    def _delete_rules(self, conn: Connection, ids: Any) -> None:
        # Children first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
        conn.execute(delete(t.replication_tasks).where(tk.rule_id.in_(ids)))
        conn.execute(delete(t.replication_executions).where(ex.rule_id.in_(ids)))
        conn.execute(delete(t.replication_rules).where(ru.id.in_(ids)))

    def delete_rule(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            rule_id = conn.execute(select(ru.id).where(ru.name == name)).scalar()
            if rule_id is None:
                return False
            self._delete_rules(conn, select(ru.id).where(ru.id == rule_id))
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def set_enabled(self, name: str, enabled: bool) -> RuleRecord | None:
        def work(conn: Connection) -> RuleRecord | None:
            conn.execute(update(t.replication_rules).where(ru.name == name).values(enabled=enabled))
            row = conn.execute(_RULES.where(ru.name == name)).first()
            return _rule(row) if row is not None else None

        return self._store.write(work)

    def mark_scheduled(self, rule_id: int, at: datetime) -> None:
        self._store.write(
            lambda conn: conn.execute(update(t.replication_rules).where(ru.id == rule_id).values(last_scheduled_at=at))
        )

    # -- executions ------------------------------------------------------------------------

    def start_execution(self, rule_id: int, trigger: str, scope: str | None) -> int:
        zero = dict.fromkeys(COUNT_FIELDS, 0)

        def work(conn: Connection) -> int:
            statement = insert(t.replication_executions).values(
                rule_id=rule_id, trigger=trigger, scope=scope, status="running", started_at=utcnow(), **zero
            )
            return int(conn.execute(statement.returning(ex.id)).scalar_one())

        return self._store.write(work)

    def finish_execution(
        self,
        execution_id: int,
        status: str,
        counts: Counts,
        error: str | None,
        *,
        events: Sequence[Event] = (),
        scope: str | None = None,
    ) -> None:
        """Record how an execution ended; ``scope``, when given, replaces the one it started with
        (what it covered plus what it left undone, already cut to the column)."""
        values: dict[str, object] = {name: getattr(counts, name) for name in COUNT_FIELDS}
        if scope is not None:
            values["scope"] = scope

        def work(conn: Connection) -> None:
            conn.execute(
                update(t.replication_executions)
                .where(ex.id == execution_id)
                .values(status=status, finished_at=utcnow(), error=error, **values)
            )
            insert_events(conn, events)

        self._store.write(work)

    def interrupt(self, triggers: Sequence[str], error: str) -> int:
        """Mark the executions of ``triggers`` still ``running`` failed with ``error``; how many."""

        def work(conn: Connection) -> int:
            stale = conn.execute(
                update(t.replication_executions)
                .where(ex.status == "running", ex.trigger.in_(list(triggers)))
                .values(status="failed", finished_at=utcnow(), error=error)
                .returning(ex.id)
            )
            return len(stale.all())

        return self._store.write(work)

    def executions(self, rule_id: int | None, limit: int, before_id: int | None) -> list[ExecutionRecord]:
        query = select(t.replication_executions).order_by(ex.id.desc()).limit(limit)
        if rule_id is not None:
            query = query.where(ex.rule_id == rule_id)
        if before_id is not None:
            query = query.where(ex.id < before_id)
        with self._read() as conn:
            return [_execution(r) for r in conn.execute(query)]

    def execution(self, execution_id: int) -> ExecutionRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.replication_executions).where(ex.id == execution_id)).first()
        return _execution(row) if row is not None else None

    # -- on-push tasks ---------------------------------------------------------------------

    def cursor(self, consumer: str) -> int:
        with self._read() as conn:
            return read_cursor(conn, consumer)

    def add_tasks(self, consumer: str, position: int, tasks: Sequence[NewTask]) -> int:
        """In one transaction: insert ``tasks`` (once per rule and event) due now and move the
        consumer's cursor to ``position``; how many were new."""

        def work(conn: Connection) -> int:
            now = utcnow()
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            added = 0
            for task in tasks:
                statement = dialect.insert(t.replication_tasks).values(
                    rule_id=task.rule_id, event_id=task.event_id, action=task.action, repository=task.repository,
                    reference=task.reference, state="pending", attempts=0, next_attempt_at=now, created_at=now,
                )  # fmt: skip
                added += conn.execute(statement.on_conflict_do_nothing().returning(tk.id)).first() is not None
            move_cursor(conn, consumer, position)
            return added

        return self._store.write(work)

    def due_tasks(self, now: datetime, limit: int) -> list[TaskRecord]:
        query = (
            select(t.replication_tasks)
            .where(tk.state == "pending", tk.next_attempt_at <= now)
            .order_by(tk.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_task(r) for r in conn.execute(query)]

    def finish_task(self, task_id: int, error: str | None, retry_at: datetime | None) -> None:
        """Done (no error), pending again at ``retry_at``, or failed (an error and no retry)."""
        state = "done" if error is None else ("pending" if retry_at is not None else "failed")

        def work(conn: Connection) -> None:
            conn.execute(
                update(t.replication_tasks)
                .where(tk.id == task_id)
                .values(state=state, attempts=tk.attempts + 1, next_attempt_at=retry_at, last_error=error)
            )

        self._store.write(work)

    def pending_tasks(self) -> int:
        with self._read() as conn:
            return len(conn.execute(select(tk.id).where(tk.state == "pending")).all())
