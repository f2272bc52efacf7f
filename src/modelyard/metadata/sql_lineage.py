"""The lineage index in SQL (``lineage_index.py`` has the protocol).

Both walks are index lookups: descendants by base through ``manifest_bases``'s index on
``(base_digest, base_repository)``, by subject through ``manifests``' index on
``(repository_id, subject_digest)``; a node's own parents are columns of its row. Keys are
batched per repository, so a walk costs one query per level and direction, not one per node.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select
from sqlalchemy.sql import ColumnElement

from modelyard.domain.lineage import BaseRef, LineageNode, Relation
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc
from modelyard.metadata.lineage_index import Key, StoredNode
from modelyard.metadata.sql_base import SqlPart
from modelyard.metadata.sql_models import current_tags

_m = t.manifests.c
_r = t.repositories.c
_b = t.manifest_bases.c


def _by_repository(keys: Sequence[Key]) -> dict[str, list[str]]:
    grouped: dict[str, set[str]] = defaultdict(set)
    for repository, digest in keys:
        grouped[repository].add(digest)
    return {repository: sorted(digests) for repository, digests in grouped.items()}


def _matching(keys: Sequence[Key], repository: Any, digest: Any) -> ColumnElement[bool]:
    return or_(*(and_(repository == name, digest.in_(ds)) for name, ds in _by_repository(keys).items()))


class SqlLineageIndex(SqlPart):
    def put_base(self, repository: str, digest: str, base: BaseRef | None) -> bool:
        def work(conn: Connection) -> bool:
            manifest_id = conn.execute(
                select(_m.id)
                .join(t.repositories, _r.id == _m.repository_id)
                .where(_r.name == repository, _m.digest == digest)
            ).scalar()
            if manifest_id is None:
                return False
            conn.execute(delete(t.manifest_bases).where(_b.manifest_id == manifest_id))
            if base is not None:
                conn.execute(
                    insert(t.manifest_bases).values(
                        manifest_id=manifest_id,
                        base_repository=base.repository,
                        base_digest=base.digest,
                        base_name=base.name,
                    )
                )
            return True

        return self._store.write(work)

    def nodes(self, keys: Sequence[Key]) -> dict[Key, StoredNode]:
        if not keys:
            return {}
        query = (
            select(
                _m.repository_id, _r.name, _m.digest, _m.media_type, _m.artifact_type, _m.subject_digest,
                _m.created_at, _b.base_repository, _b.base_digest,
            )
            .select_from(
                t.manifests.join(t.repositories, _r.id == _m.repository_id).outerjoin(
                    t.manifest_bases, _b.manifest_id == _m.id
                )
            )
            .where(_matching(keys, _r.name, _m.digest))
        )  # fmt: skip
        with self._read() as conn:
            rows = list(conn.execute(query))
            tags = current_tags(conn, [(row.repository_id, row.digest) for row in rows])
        found: dict[Key, StoredNode] = {}
        for row in rows:
            parents: list[tuple[Key, Relation]] = []
            if row.base_digest is not None:
                parents.append(((row.base_repository, row.base_digest), "base"))
            if row.subject_digest is not None:
                parents.append(((row.name, row.subject_digest), "subject"))
            node = LineageNode(
                repository=row.name,
                digest=row.digest,
                media_type=row.media_type,
                artifact_type=row.artifact_type,
                created_at=as_utc(row.created_at),
                tags=tags.get((row.repository_id, row.digest), ()),
            )
            found[node.key] = StoredNode(node, tuple(parents))
        return found

    def children(self, keys: Sequence[Key], limit: int) -> list[tuple[Key, Relation, Key]]:
        if not keys:
            return []
        by_base = (
            select(_b.base_repository, _b.base_digest, _r.name, _m.digest)
            .select_from(t.manifest_bases.join(t.manifests, _m.id == _b.manifest_id).join(
                t.repositories, _r.id == _m.repository_id
            ))
            .where(_matching(keys, _b.base_repository, _b.base_digest))
            .order_by(_m.id)
            .limit(limit)
        )  # fmt: skip
        by_subject = (
            select(_r.name, _m.subject_digest, _m.digest)
            .select_from(t.manifests.join(t.repositories, _r.id == _m.repository_id))
            .where(_matching(keys, _r.name, _m.subject_digest))
            .order_by(_m.id)
            .limit(limit)
        )
        found: list[tuple[Key, Relation, Key]] = []
        with self._read() as conn:
            for row in conn.execute(by_base):
                found.append(((row.base_repository, row.base_digest), "base", (row.name, row.digest)))
            for referrer in conn.execute(by_subject):
                found.append(((referrer.name, referrer.subject_digest), "subject", (referrer.name, referrer.digest)))
        return found[:limit]
