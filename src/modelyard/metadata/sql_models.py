"""The model index in SQL (``model_index.py`` has the protocol; ``tables.py`` the two tables).

Search is one indexed query: every filter is an equality or a range on a column whose index
ends in ``id``, and pages are read newest first with ``id < cursor``, so on PostgreSQL the
planner walks one index (or ANDs two bitmaps) rather than scanning the table; the text filter
is a prefix of the repository or model name (``C``-collated columns, so ``LIKE 'x%'`` is a
range on their index). The tags of a page come from one more query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.sql import ColumnElement, Select

from modelyard.domain.models import ModelFacts, ModelFile, ModelQuery, ModelVersionRecord, TensorEntry
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.fastread import as_json
from modelyard.metadata.sql_base import SqlPart

_v = t.model_versions.c
_f = t.model_files.c
_t = t.model_tensors.c
_m = t.manifests.c

_FACT_COLUMNS = (
    "packaging", "status", "reason", "format", "name", "architecture", "parameters", "precision", "quantization",
    "quant_bits", "license", "context_length", "total_size", "file_count", "card",
)  # fmt: skip


def _version_values(facts: ModelFacts) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(facts, name) for name in _FACT_COLUMNS}
    values["name_key"] = facts.name.lower()[:255] if facts.name else None
    values["details"] = facts.details or None
    return values


def _file_values(version_id: int, file: ModelFile) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "path": file.path,
        "size": file.size,
        "layer_digest": file.layer_digest,
        "media_type": file.media_type,
        "layer_index": file.layer_index,
        "kind": file.kind,
        "archive": file.archive,
        "member_offset": file.member_offset,
        "mode": file.mode,
    }


_TENSOR_BATCH = 5000


def _tensor_values(version_id: int, path: str, position: int, entry: TensorEntry) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "path": path,
        "position": position,
        "name": entry.name,
        "dtype": entry.dtype,
        "shape": list(entry.shape),
        "start": entry.start,
        "end": entry.end,
    }


def _tensor(row: Any) -> TensorEntry:
    shape = as_json(row.shape) or []
    return TensorEntry(row.name, row.dtype, tuple(int(d) for d in shape), int(row.start), int(row.end))


def _file(row: Any) -> ModelFile:
    return ModelFile(
        path=row.path,
        size=int(row.size),
        layer_digest=row.layer_digest,
        media_type=row.media_type,
        layer_index=int(row.layer_index),
        kind=row.kind,
        archive=row.archive,
        member_offset=None if row.member_offset is None else int(row.member_offset),
        mode=row.mode,
    )


def _select_versions() -> Select[Any]:
    return select(t.model_versions, _m.media_type, _m.created_at).join(t.manifests, _m.id == _v.manifest_id)


def current_tags(conn: Connection, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], tuple[str, ...]]:
    """Current tags of each ``(repository_id, digest)``, sorted."""
    if not keys:
        return {}
    by_repo: dict[int, set[str]] = defaultdict(set)
    for repository_id, digest in keys:
        by_repo[repository_id].add(digest)
    tag = t.tags.c
    which = or_(*(and_(tag.repository_id == rid, tag.manifest_digest.in_(sorted(ds))) for rid, ds in by_repo.items()))
    query = select(tag.repository_id, tag.manifest_digest, tag.name).where(which, tag.lifetime_end.is_(None))
    found: dict[tuple[int, str], list[str]] = defaultdict(list)
    for row in conn.execute(query):
        found[(row.repository_id, row.manifest_digest)].append(row.name)
    return {key: tuple(sorted(names)) for key, names in found.items()}


class SqlModelIndex(SqlPart):
    def put(self, repository: str, digest: str, facts: ModelFacts) -> bool:
        def work(conn: Connection) -> bool:
            found = conn.execute(
                select(_m.id, _m.repository_id)
                .join(t.repositories, t.repositories.c.id == _m.repository_id)
                .where(t.repositories.c.name == repository, _m.digest == digest)
            ).first()
            if found is None:
                return False
            values = {**_version_values(facts), "indexed_at": utcnow()}
            version_id = conn.execute(select(_v.id).where(_v.manifest_id == found.id)).scalar()
            if version_id is None:
                version_id = conn.execute(
                    insert(t.model_versions)
                    .values(
                        manifest_id=found.id,
                        repository_id=found.repository_id,
                        repository_name=repository,
                        digest=digest,
                        **values,
                    )
                    .returning(_v.id)
                ).scalar_one()
            else:
                conn.execute(update(t.model_versions).where(_v.id == version_id).values(**values))
                conn.execute(delete(t.model_files).where(_f.version_id == version_id))
                conn.execute(delete(t.model_tensors).where(_t.version_id == version_id))
            if facts.files:
                conn.execute(insert(t.model_files), [_file_values(version_id, f) for f in facts.files])
            rows = [
                _tensor_values(version_id, path, position, entry)
                for path, entries in sorted(facts.tensors.items())
                for position, entry in enumerate(entries)
            ]
            for chunk in range(0, len(rows), _TENSOR_BATCH):
                conn.execute(insert(t.model_tensors), rows[chunk : chunk + _TENSOR_BATCH])
            return True

        # A racing put of the same manifest loses the unique insert and is retried as an update.
        return self._store.write(work)

    def get(self, repository: str, digest: str, *, with_files: bool = False) -> ModelVersionRecord | None:
        query = _select_versions().where(_v.repository_name == repository, _v.digest == digest)
        with self._read() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            files: list[ModelFile] = []
            if with_files:
                rows = conn.execute(
                    select(t.model_files).where(_f.version_id == row.id).order_by(_f.layer_index, _f.path)
                )
                files = [_file(r) for r in rows]
            tags = current_tags(conn, [(row.repository_id, row.digest)])
        return self._record(row, tags.get((row.repository_id, row.digest), ()), files)

    def summaries(self, repository: str, digests: Sequence[str]) -> dict[str, ModelVersionRecord]:
        if not digests:
            return {}
        query = _select_versions().where(_v.repository_name == repository, _v.digest.in_(list(digests)))
        with self._read() as conn:
            return {row.digest: self._record(row, (), []) for row in conn.execute(query)}

    def file(self, repository: str, digest: str, path: str) -> ModelFile | None:
        query = (
            select(t.model_files)
            .join(t.model_versions, _v.id == _f.version_id)
            .where(_v.repository_name == repository, _v.digest == digest, _f.path == path)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _file(row)

    def digests_starting(self, repository: str, prefix: str, limit: int = 2) -> list[str]:
        query = (
            select(_v.digest)
            .where(_v.repository_name == repository, _v.digest.startswith(prefix, autoescape=True))
            .order_by(_v.digest)
            .limit(limit)
        )
        with self._read() as conn:
            return [row.digest for row in conn.execute(query)]

    def tensors(self, repository: str, digest: str, path: str, name: str | None = None) -> list[TensorEntry]:
        query = (
            select(_t.name, _t.dtype, _t.shape, _t.start, _t.end)
            .join(t.model_versions, _v.id == _t.version_id)
            .where(_v.repository_name == repository, _v.digest == digest, _t.path == path)
            .order_by(_t.position)
        )
        if name is not None:
            query = query.where(_t.name == name)
        with self._read() as conn:
            return [_tensor(row) for row in conn.execute(query)]

    def search(self, query: ModelQuery, limit: int, before: int | None) -> list[ModelVersionRecord]:
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (_v.architecture, query.architecture),
            (_v.license, query.license),
            (_v.format, query.format),
        ):
            if value is not None:
                conditions.append(column == value)
        if query.quantization is not None and query.quant_bits is not None:
            conditions.append(or_(_v.quantization == query.quantization, _v.quant_bits == query.quant_bits))
        elif query.quantization is not None:
            conditions.append(_v.quantization == query.quantization)
        elif query.quant_bits is not None:
            conditions.append(_v.quant_bits == query.quant_bits)
        if query.min_params is not None:
            conditions.append(_v.parameters >= query.min_params)
        if query.max_params is not None:
            conditions.append(_v.parameters <= query.max_params)
        if query.text:
            conditions.append(
                or_(
                    _v.repository_name.startswith(query.text.lower(), autoescape=True),
                    _v.name_key.startswith(query.text.lower(), autoescape=True),
                )
            )
        if before is not None:
            conditions.append(_v.id < before)
        statement = _select_versions().where(*conditions).order_by(_v.id.desc()).limit(limit)
        with self._read() as conn:
            rows = list(conn.execute(statement))
            tags = current_tags(conn, [(row.repository_id, row.digest) for row in rows])
        return [self._record(row, tags.get((row.repository_id, row.digest), ()), []) for row in rows]

    def unindexed(self, limit: int) -> list[tuple[str, str]]:
        query = (
            select(t.repositories.c.name, _m.digest)
            .select_from(
                t.manifests.join(t.repositories, t.repositories.c.id == _m.repository_id).outerjoin(
                    t.model_versions, _v.manifest_id == _m.id
                )
            )
            .where(_v.id.is_(None))
            .order_by(_m.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [(row.name, row.digest) for row in conn.execute(query)]

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _record(row: Any, tags: Sequence[str], files: list[ModelFile]) -> ModelVersionRecord:
        facts = ModelFacts(
            packaging=row.packaging,
            status=row.status,
            reason=row.reason,
            format=row.format,
            name=row.name,
            architecture=row.architecture,
            parameters=None if row.parameters is None else int(row.parameters),
            precision=row.precision,
            quantization=row.quantization,
            quant_bits=row.quant_bits,
            license=row.license,
            context_length=None if row.context_length is None else int(row.context_length),
            total_size=int(row.total_size),
            file_count=int(row.file_count),
            card=row.card,
            details=dict(as_json(row.details) or {}),
            files=tuple(files),
        )
        return ModelVersionRecord(
            id=int(row.id),
            repository=row.repository_name,
            digest=row.digest,
            media_type=row.media_type,
            tags=tuple(tags),
            created_at=as_utc(row.created_at),
            indexed_at=as_utc(row.indexed_at),
            facts=facts,
        )
