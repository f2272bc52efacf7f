"""Retention policies, quotas, what retention reads and deletes, last-pulled times and
maintenance runs, in SQL (the protocol: ``metadata/lifecycle.py``; usage: ``sql_usage.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, or_, select, update

from modelyard.domain.events import Event
from modelyard.domain.lifecycle import (
    MaintenanceRun,
    OwnerMissingError,
    Quota,
    RetentionPolicy,
    Scope,
    StoredVersion,
    TagSpan,
)
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.fastread import as_json
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_usage import SqlUsage

_BATCH = 500
_m = t.manifests.c
_mr = t.manifest_references.c


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]


def _policy(row: Any) -> RetentionPolicy:
    return RetentionPolicy(
        keep_last=row.keep_last,
        keep_days=row.keep_days,
        keep_tags=tuple(as_json(row.keep_tags) or ()),
        alias_window_days=float(row.alias_window_days),
        updated_at=as_utc(row.updated_at),
        updated_by=row.updated_by,
    )


def _run(row: Any) -> MaintenanceRun:
    return MaintenanceRun(
        id=row.id, kind=row.kind, trigger=row.trigger, actor=row.actor, scope=row.scope, dry_run=bool(row.dry_run),
        started_at=as_utc(row.started_at), finished_at=as_utc(row.finished_at), removed=int(row.removed),
        freed_bytes=int(row.freed_bytes), detail=as_json(row.detail) or {}, error=row.error,
    )  # fmt: skip


class SqlLifecycle(SqlUsage):
    # -- owners ------------------------------------------------------------------------------

    def _owner(self, conn: Connection, scope: Scope) -> tuple[str, int | None]:
        if scope.kind == "repository":
            return "repository_id", self._repo_id(conn, scope.name)
        c = t.compartments.c
        return "compartment_id", conn.execute(select(c.id).where(c.name == scope.name)).scalar()

    def _get(self, table: Table, scope: Scope) -> Any:
        with self._read() as conn:
            column, owner = self._owner(conn, scope)
            if owner is None:
                return None
            return conn.execute(select(table).where(table.c[column] == owner)).first()

    def _put(self, table: Table, scope: Scope, values: dict[str, Any], events: Sequence[Event]) -> None:
        def work(conn: Connection) -> None:
            column, owner = self._owner(conn, scope)
            if owner is None:
                raise OwnerMissingError(str(scope))
            changed = conn.execute(update(table).where(table.c[column] == owner).values(**values)).rowcount
            if not changed:
                conn.execute(insert(table).values(**{column: owner}, **values))
            insert_events(conn, events)

        self._store.write(work)

    def _delete(self, table: Table, scope: Scope, events: Sequence[Event]) -> bool:
        def work(conn: Connection) -> bool:
            column, owner = self._owner(conn, scope)
            if owner is None or not conn.execute(delete(table).where(table.c[column] == owner)).rowcount:
                return False
            insert_events(conn, events)
            return True

        return self._store.write(work)

    # -- retention policies ------------------------------------------------------------------

    def get_policy(self, scope: Scope) -> RetentionPolicy | None:
        row = self._get(t.retention_policies, scope)
        return None if row is None else _policy(row)

    def set_policy(self, scope: Scope, policy: RetentionPolicy, *, events: Sequence[Event] = ()) -> RetentionPolicy:
        values = {
            "keep_last": policy.keep_last, "keep_days": policy.keep_days, "keep_tags": list(policy.keep_tags),
            "alias_window_days": policy.alias_window_days, "updated_at": utcnow(), "updated_by": policy.updated_by,
        }  # fmt: skip
        self._put(t.retention_policies, scope, values, events)
        stored = self.get_policy(scope)
        assert stored is not None
        return stored

    def delete_policy(self, scope: Scope, *, events: Sequence[Event] = ()) -> bool:
        return self._delete(t.retention_policies, scope, events)

    def policy_scopes(self) -> list[Scope]:
        p = t.retention_policies.c
        with self._read() as conn:
            repos = conn.execute(
                select(t.repositories.c.name).join(t.retention_policies, p.repository_id == t.repositories.c.id)
            )
            scopes = [Scope("repository", name) for name in repos.scalars()]
            comps = conn.execute(
                select(t.compartments.c.name).join(t.retention_policies, p.compartment_id == t.compartments.c.id)
            )
            scopes += [Scope("compartment", name) for name in comps.scalars()]
        return scopes

    # -- quotas --------------------------------------------------------------------------------

    def get_quota(self, scope: Scope) -> Quota | None:
        row = self._get(t.quotas, scope)
        return None if row is None else Quota(int(row.limit_bytes), as_utc(row.updated_at), row.updated_by)

    def set_quota(self, scope: Scope, quota: Quota, *, events: Sequence[Event] = ()) -> Quota:
        values = {"limit_bytes": quota.limit_bytes, "updated_at": utcnow(), "updated_by": quota.updated_by}
        self._put(t.quotas, scope, values, events)
        stored = self.get_quota(scope)
        assert stored is not None
        return stored

    def delete_quota(self, scope: Scope, *, events: Sequence[Event] = ()) -> bool:
        return self._delete(t.quotas, scope, events)

    def quotas_for(self, repository: str, compartment: str | None) -> dict[Scope, int]:
        q = t.quotas.c
        repo_id = select(t.repositories.c.id).where(t.repositories.c.name == repository).scalar_subquery()
        owners = [q.repository_id == repo_id]
        if compartment is not None:
            comp_id = select(t.compartments.c.id).where(t.compartments.c.name == compartment).scalar_subquery()
            owners.append(q.compartment_id == comp_id)
        with self._read() as conn:
            rows = conn.execute(select(q.repository_id, q.limit_bytes).where(or_(*owners))).all()
        found: dict[Scope, int] = {}
        for row in rows:
            if row.repository_id is not None:
                found[Scope("repository", repository)] = int(row.limit_bytes)
            elif compartment is not None:
                found[Scope("compartment", compartment)] = int(row.limit_bytes)
        return found

    # -- what retention reads --------------------------------------------------------------

    def repositories_in(self, compartment: str) -> list[str]:
        r = t.repositories.c
        comp = select(t.compartments.c.id).where(t.compartments.c.name == compartment).scalar_subquery()
        with self._read() as conn:
            return list(conn.execute(select(r.name).where(r.compartment_id == comp).order_by(r.name)).scalars())

    def versions(self, repository: str) -> list[StoredVersion]:
        with self._read() as conn:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return []
            rows = conn.execute(
                select(_m.id, _m.digest, _m.size, _m.created_at, _m.last_pulled_at, _m.subject_digest).where(
                    _m.repository_id == repo_id
                )
            ).all()
            refs = conn.execute(
                select(_mr.manifest_id, _mr.digest, _mr.is_manifest)
                .join(t.manifests, t.manifests.c.id == _mr.manifest_id)
                .where(_m.repository_id == repo_id)
            ).all()
            tg = t.tags.c
            tags = conn.execute(
                select(tg.name, tg.manifest_digest).where(tg.repository_id == repo_id, tg.lifetime_end.is_(None))
            ).all()
        children: dict[int, list[str]] = {}
        blobs: dict[int, list[str]] = {}
        for ref in refs:
            (children if ref.is_manifest else blobs).setdefault(ref.manifest_id, []).append(ref.digest)
        tagged: dict[str, list[str]] = {}
        for tag in tags:
            tagged.setdefault(tag.manifest_digest, []).append(tag.name)
        return [
            StoredVersion(
                id=row.id,
                digest=row.digest,
                size=int(row.size),
                created_at=as_utc(row.created_at),
                last_pulled_at=None if row.last_pulled_at is None else as_utc(row.last_pulled_at),
                subject=row.subject_digest,
                children=tuple(sorted(children.get(row.id, ()))),
                blobs=tuple(sorted(blobs.get(row.id, ()))),
                tags=tuple(sorted(tagged.get(row.digest, ()))),
            )
            for row in rows
        ]

    def tag_spans(self, repository: str, since: datetime) -> list[TagSpan]:
        tg = t.tags.c
        with self._read() as conn:
            repo_id = self._repo_id(conn, repository)
            rows = conn.execute(
                select(tg.name, tg.manifest_digest, tg.lifetime_start, tg.lifetime_end).where(
                    tg.repository_id == repo_id, or_(tg.lifetime_end.is_(None), tg.lifetime_end >= since)
                )
            ).all()
        return [
            TagSpan(
                row.name,
                row.manifest_digest,
                as_utc(row.lifetime_start),
                None if row.lifetime_end is None else as_utc(row.lifetime_end),
            )
            for row in rows
        ]

    def blob_sizes(self, digests: Sequence[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(digests))):
                query = select(t.blobs.c.digest, t.blobs.c.size).where(
                    t.blobs.c.digest.in_(chunk), t.blobs.c.condemned_at.is_(None)
                )
                sizes.update((row.digest, int(row.size)) for row in conn.execute(query))
        return sizes

    def still_referenced(self, digests: Sequence[str], excluding: Sequence[int] = ()) -> set[str]:
        found: set[str] = set()
        skip = set(excluding)
        with self._read() as conn:
            for chunk in _chunks(sorted(set(digests))):
                query = select(_mr.digest, _mr.manifest_id).where(_mr.digest.in_(chunk), _mr.is_manifest == 0)
                found.update(row.digest for row in conn.execute(query) if row.manifest_id not in skip)
        return found

    def delete_versions(
        self,
        repository: str,
        expected: Sequence[tuple[str, tuple[str, ...]]],
        events: Callable[[str, tuple[str, ...]], Sequence[Event]],
    ) -> list[str]:
        tg = t.tags.c

        def work(conn: Connection) -> list[str]:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return []
            # Tag moves of the repository queue behind this (they take the row FOR KEY SHARE).
            conn.execute(select(t.repositories.c.id).where(t.repositories.c.id == repo_id).with_for_update())
            deleted: list[str] = []
            for digest, tags in expected:
                found = conn.execute(
                    select(_m.id).where(_m.repository_id == repo_id, _m.digest == digest).with_for_update()
                ).scalar()
                if found is None:
                    continue
                current = conn.execute(
                    select(tg.name).where(
                        tg.repository_id == repo_id, tg.manifest_digest == digest, tg.lifetime_end.is_(None)
                    )
                ).scalars()
                if tuple(sorted(current)) != tags or self._listed_by_index(conn, repo_id, digest):
                    continue  # changed since the plan: it stays until the next one
                now = utcnow()
                conn.execute(delete(t.manifests).where(_m.id == found))
                ended = conn.execute(
                    update(t.tags)
                    .where(tg.repository_id == repo_id, tg.manifest_digest == digest, tg.lifetime_end.is_(None))
                    .values(lifetime_end=now)
                ).rowcount
                if ended:
                    conn.execute(
                        insert(t.tag_history),
                        [
                            {"repository_id": repo_id, "tag": tag, "from_digest": digest, "to_digest": None,
                             "actor": "system", "at": now, "how": "retention", "reason": "retention policy"}
                            for tag in tags
                        ],
                    )  # fmt: skip
                insert_events(conn, events(digest, tags))
                deleted.append(digest)
            return deleted

        return self._store.write(work)

    @staticmethod
    def _listed_by_index(conn: Connection, repo_id: int, digest: str) -> bool:
        query = (
            select(_m.id)
            .join(t.manifest_references, _mr.manifest_id == _m.id)
            .where(_m.repository_id == repo_id, _mr.digest == digest, _mr.is_manifest == 1)
            .limit(1)
        )
        return conn.execute(query).first() is not None

    # -- last-pulled times -------------------------------------------------------------------

    def record_pulls(self, pulls: Sequence[tuple[str, str, datetime]]) -> None:
        if not pulls:
            return
        repo = select(t.repositories.c.id).where(t.repositories.c.name == bindparam("p_repository")).scalar_subquery()
        at = bindparam("p_at", type_=t.manifests.c.last_pulled_at.type)
        statement = (
            update(t.manifests)
            .where(
                _m.repository_id == repo,
                _m.digest == bindparam("p_digest"),
                or_(_m.last_pulled_at.is_(None), _m.last_pulled_at < at),
            )
            .values(last_pulled_at=at)
        )
        rows = [{"p_repository": r, "p_digest": d, "p_at": when} for r, d, when in pulls]
        self._store.write(lambda conn: conn.execute(statement, rows))

    # -- maintenance runs --------------------------------------------------------------------

    def record_run(self, run: MaintenanceRun, *, events: Sequence[Event] = ()) -> MaintenanceRun:
        values = {
            "kind": run.kind, "trigger": run.trigger, "actor": run.actor, "scope": run.scope, "dry_run": run.dry_run,
            "started_at": run.started_at, "finished_at": run.finished_at, "removed": run.removed,
            "freed_bytes": run.freed_bytes, "detail": run.detail, "error": run.error,
        }  # fmt: skip

        def work(conn: Connection) -> int:
            run_id = conn.execute(insert(t.maintenance_runs).values(**values).returning(t.maintenance_runs.c.id))
            insert_events(conn, events)
            return int(run_id.scalar_one())

        run_id = self._store.write(work)
        return dataclasses.replace(run, id=run_id)

    def runs(self, kind: str | None, limit: int, before_id: int | None) -> list[MaintenanceRun]:
        mr = t.maintenance_runs.c
        query = select(t.maintenance_runs).order_by(mr.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(mr.kind == kind)
        if before_id is not None:
            query = query.where(mr.id < before_id)
        with self._read() as conn:
            return [_run(row) for row in conn.execute(query)]
