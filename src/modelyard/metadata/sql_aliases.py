"""Aliases in SQL: the append-only tag history, alias moves with optimistic concurrency, and
what the alias rules need to read (the rules, referrer types, past targets).

Every write that changes a current tag (a push in ``sql_manifests.py``, a tag or manifest
delete, the moves here) appends its :func:`record_change` row in the same transaction, so the
history can never miss a move that committed nor show one that rolled back. Nothing updates or
deletes a history row; only deleting the whole repository removes its history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, select, update

from modelyard.domain.aliases import (
    AliasRules,
    CurrentTag,
    HistoryEntry,
    TagChange,
    TagMoveConflict,
    TargetMissing,
    gates_from,
    protected_from,
)
from modelyard.domain.events import Event
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.fastread import as_json
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_base import SqlPart, SqlStoreAccess


def record_change(
    conn: Connection,
    repo_id: int,
    tag: str,
    from_digest: str | None,
    to_digest: str | None,
    change: TagChange | None,
    at: datetime,
) -> None:
    """Append one history row (``change`` ``None``: a push by an unknown actor)."""
    change = change or TagChange("push")
    conn.execute(
        insert(t.tag_history).values(
            repository_id=repo_id, tag=tag, from_digest=from_digest, to_digest=to_digest, actor=change.actor,
            at=at, how=change.how, reason=change.reason,
        )
    )  # fmt: skip


def lock_repository(conn: Connection, repo_id: int) -> None:
    """Tag moves of one repository queue on its row (``sql_manifests._move_tag`` says why)."""
    conn.execute(select(t.repositories.c.id).where(t.repositories.c.id == repo_id).with_for_update(key_share=True))


def current_digest(conn: Connection, repo_id: int, tag: str) -> tuple[int, str] | None:
    row = conn.execute(
        select(t.tags.c.id, t.tags.c.manifest_digest).where(
            t.tags.c.repository_id == repo_id, t.tags.c.name == tag, t.tags.c.lifetime_end.is_(None)
        )
    ).first()
    return None if row is None else (int(row.id), str(row.manifest_digest))


def _entry(row: Any) -> HistoryEntry:
    return HistoryEntry(
        id=int(row.id), tag=row.tag, from_digest=row.from_digest, to_digest=row.to_digest, actor=row.actor,
        at=as_utc(row.at), how=row.how, reason=row.reason, manifest_present=bool(row.manifest_present),
    )  # fmt: skip


def _history_query(repository: str, tag: str) -> Any:
    h = t.tag_history.c
    present = (
        exists()
        .where(t.manifests.c.repository_id == h.repository_id, t.manifests.c.digest == h.to_digest)
        .label("manifest_present")
    )
    return (
        select(h.id, h.tag, h.from_digest, h.to_digest, h.actor, h.at, h.how, h.reason, present)
        .join(t.repositories, t.repositories.c.id == h.repository_id)
        .where(t.repositories.c.name == repository, h.tag == tag)
    )


_RULES = select(t.repositories.c.protected_aliases, t.repositories.c.promotion_gates).where(
    t.repositories.c.name == bindparam("name")
)


class SqlAliases(SqlPart):
    def __init__(self, store: SqlStoreAccess) -> None:
        super().__init__(store)

    def current(self, repository: str) -> list[CurrentTag]:
        h = t.tag_history.c
        last = (
            select(h.tag, func.max(h.id).label("last_id"))
            .join(t.repositories, t.repositories.c.id == h.repository_id)
            .where(t.repositories.c.name == repository)
            .group_by(h.tag)
            .subquery()
        )
        history = t.tag_history.alias("last_move")
        query = (
            select(t.tags.c.name, t.tags.c.manifest_digest, t.tags.c.lifetime_start, history.c.actor)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .outerjoin(last, last.c.tag == t.tags.c.name)
            .outerjoin(history, history.c.id == last.c.last_id)
            .where(t.repositories.c.name == repository, t.tags.c.lifetime_end.is_(None))
            .order_by(t.tags.c.name)
        )
        with self._read() as conn:
            return [
                CurrentTag(row.name, row.manifest_digest, as_utc(row.lifetime_start), row.actor)
                for row in conn.execute(query)
            ]

    def history(
        self, repository: str, tag: str, *, at: datetime | None, limit: int, before_id: int | None
    ) -> list[HistoryEntry]:
        h = t.tag_history.c
        query = _history_query(repository, tag)
        if at is not None:
            query = query.where(h.at <= at).order_by(h.at.desc(), h.id.desc())
        else:
            # Row ids are the order the moves committed in (they queue on the repository's row),
            # whatever the clocks of the replicas that stamped ``at``: pages by id never skip.
            query = query.order_by(h.id.desc())
        if before_id is not None:
            query = query.where(h.id < before_id)
        query = query.limit(limit)
        with self._read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def targets(self, repository: str, tag: str) -> list[HistoryEntry]:
        h = t.tag_history.c
        query = _history_query(repository, tag).where(h.to_digest.is_not(None)).order_by(h.id.desc())
        with self._read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def move(
        self,
        repository: str,
        tag: str,
        digest: str,
        *,
        expected: str | None,
        change: TagChange,
        events: Callable[[str | None], Sequence[Event]],
    ) -> str | None:
        """Point ``tag`` at ``digest`` (a manifest of the repository, else :class:`TargetMissing`)
        if it points at ``expected`` now (``None``: any), else :class:`TagMoveConflict`; returns
        the digest it pointed at before. The check, the move, its history row and ``events`` are
        one transaction, under the repository's row lock, so of two racing moves with the same
        expectation exactly one wins."""

        def work(conn: Connection) -> str | None:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                raise TargetMissing(digest)
            lock_repository(conn, repo_id)
            now = utcnow()
            current = current_digest(conn, repo_id, tag)
            previous = None if current is None else current[1]
            if expected is not None and previous != expected:
                raise TagMoveConflict(tag, previous)
            m = t.manifests.c
            # Share-locked so a concurrent delete of the manifest waits for this move (and then
            # ends the tag it finds pointing at it).
            found = conn.execute(
                select(m.id).where(m.repository_id == repo_id, m.digest == digest).with_for_update(read=True)
            ).first()
            if found is None:
                raise TargetMissing(digest)
            if previous == digest:
                return previous
            if current is not None:
                conn.execute(update(t.tags).where(t.tags.c.id == current[0]).values(lifetime_end=now))
            conn.execute(
                insert(t.tags).values(repository_id=repo_id, name=tag, manifest_digest=digest, lifetime_start=now)
            )
            record_change(conn, repo_id, tag, previous, digest, change, now)
            insert_events(conn, events(previous))
            return previous

        return self._store.write(work)

    def delete(
        self, repository: str, tag: str, *, expected: str | None, change: TagChange, events: Sequence[Event]
    ) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            lock_repository(conn, repo_id)
            current = current_digest(conn, repo_id, tag)
            if expected is not None and (current is None or current[1] != expected):
                raise TagMoveConflict(tag, None if current is None else current[1])
            if current is None:
                return False
            now = utcnow()
            conn.execute(update(t.tags).where(t.tags.c.id == current[0]).values(lifetime_end=now))
            record_change(conn, repo_id, tag, current[1], None, change, now)
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def rules(self, repository: str) -> AliasRules:
        """Read on every tagged push: a prepared statement on the fast read path."""
        row = self._store.fast.first(_RULES, {"name": repository})
        if row is None:
            return AliasRules()
        protected, gates = row
        return AliasRules(protected_from(as_json(protected)), gates_from(as_json(gates)))

    def referrer_types(self, repository: str, digest: str) -> set[str]:
        m = t.manifests.c
        query = (
            select(m.artifact_type)
            .join(t.repositories, t.repositories.c.id == m.repository_id)
            .where(t.repositories.c.name == repository, m.subject_digest == digest, m.artifact_type.is_not(None))
            .distinct()
        )
        with self._read() as conn:
            return {str(v) for v in conn.execute(query).scalars()}

    def ever_pointed(self, repository: str, tag: str, digest: str) -> bool:
        h = t.tag_history.c
        query = (
            select(h.id)
            .join(t.repositories, t.repositories.c.id == h.repository_id)
            .where(t.repositories.c.name == repository, h.tag == tag, h.to_digest == digest)
            .limit(1)
        )
        with self._read() as conn:
            return conn.execute(query).first() is not None

    def present(self, repository: str, digests: Sequence[str]) -> set[str]:
        if not digests:
            return set()
        m = t.manifests.c
        query = (
            select(m.digest)
            .join(t.repositories, t.repositories.c.id == m.repository_id)
            .where(and_(t.repositories.c.name == repository, m.digest.in_(list(set(digests)))))
        )
        with self._read() as conn:
            return set(conn.execute(query).scalars())
