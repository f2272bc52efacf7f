"""Usage of repositories and compartments in stored bytes, as quotas count it.

How a blob is counted, and why. Blobs are stored once whatever repositories link them
(content addressing), so "the bytes of a repository" has three honest answers:

- *logical*: every blob it links, shared or not. Summed over repositories this counts a
  shared 10 GB base many times over, more than the disk holds: charging it would punish
  the deduplication the registry exists to give.
- *exclusive*: the blobs nobody else links. Sums to less than the disk holds, and two
  repositories sharing a blob would each be charged nothing for it: a quota could be evaded
  by pushing the same weights to two repositories.
- *charged* (what quotas count): each blob is charged exactly once, to the repository whose
  link to it is the oldest (ties: the lower repository id), plus each repository's own
  manifests. This is the bytes a repository *uniquely adds* to the registry in the order
  things arrived: the first push of a layer pays for it, a later mount or push of the same
  layer elsewhere adds nothing and is charged nothing. Summed over all repositories it is
  exactly the stored bytes, so nothing is charged twice and nothing escapes; when the
  oldest link goes, the next-oldest holder is charged from then on. A compartment is charged
  what its repositories are charged.

Condemned blobs (on their way out through garbage collection) count nowhere. Uploads in
progress are not usage: the quota check at upload start adds the declared size instead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, func, or_, select

from modelyard.domain.lifecycle import Scope, Usage
from modelyard.metadata import tables as t
from modelyard.metadata.sql_base import SqlPart

_rb = t.repository_blobs
_b = t.blobs
_r = t.repositories
_other = _rb.alias("other_link")


def _oldest_link() -> ColumnElement[bool]:
    """The link of this row is the oldest link of its blob (the one charged)."""
    earlier = exists().where(
        _other.c.digest == _rb.c.digest,
        or_(
            _other.c.created_at < _rb.c.created_at,
            and_(_other.c.created_at == _rb.c.created_at, _other.c.repository_id < _rb.c.repository_id),
        ),
    )
    return ~earlier


def _only_link() -> ColumnElement[bool]:
    return ~exists().where(_other.c.digest == _rb.c.digest, _other.c.repository_id != _rb.c.repository_id)


def _live() -> ColumnElement[bool]:
    return _b.c.condemned_at.is_(None)


class SqlUsage(SqlPart):
    def _scope_filter(self, scope: Scope) -> ColumnElement[bool]:
        if scope.kind == "repository":
            return _r.c.name == scope.name
        return (
            _r.c.compartment_id
            == select(t.compartments.c.id).where(t.compartments.c.name == scope.name).scalar_subquery()
        )

    def charged_bytes(self, scope: Scope) -> int:
        where = self._scope_filter(scope)
        blobs = (
            select(func.coalesce(func.sum(_b.c.size), 0))
            .select_from(_rb.join(_b, _b.c.digest == _rb.c.digest).join(_r, _r.c.id == _rb.c.repository_id))
            .where(where, _live(), _oldest_link())
        )
        manifests = (
            select(func.coalesce(func.sum(t.manifests.c.size), 0))
            .select_from(t.manifests.join(_r, _r.c.id == t.manifests.c.repository_id))
            .where(where)
        )
        with self._read() as conn:
            return int(conn.execute(blobs).scalar_one()) + int(conn.execute(manifests).scalar_one())

    def blob_is_stored(self, digest: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(_b.c.digest).where(_b.c.digest == digest, _live())).first() is not None

    def repository_usage(self, compartment: str | None = None) -> list[Usage]:
        where: list[ColumnElement[bool]] = []
        if compartment == "":
            where.append(_r.c.compartment_id.is_(None))
        elif compartment is not None:
            where.append(self._scope_filter(Scope("compartment", compartment)))
        joined = _rb.join(_b, _b.c.digest == _rb.c.digest).join(_r, _r.c.id == _rb.c.repository_id)

        def per_repo(conn: Connection, *extra: ColumnElement[bool]) -> dict[str, int]:
            query = (
                select(_r.c.name, func.sum(_b.c.size)).select_from(joined).where(*where, _live(), *extra)
                .group_by(_r.c.name)
            )  # fmt: skip
            return {row[0]: int(row[1] or 0) for row in conn.execute(query)}

        with self._read() as conn:
            names = list(conn.execute(select(_r.c.name).where(*where).order_by(_r.c.name)).scalars())
            manifest_bytes = {
                row[0]: int(row[1] or 0)
                for row in conn.execute(
                    select(_r.c.name, func.sum(t.manifests.c.size))
                    .select_from(t.manifests.join(_r, _r.c.id == t.manifests.c.repository_id))
                    .where(*where)
                    .group_by(_r.c.name)
                )
            }
            logical = per_repo(conn)
            charged = per_repo(conn, _oldest_link())
            exclusive = per_repo(conn, _only_link())
        return [
            Usage(
                name,
                charged.get(name, 0) + manifest_bytes.get(name, 0),
                logical.get(name, 0) + manifest_bytes.get(name, 0),
                exclusive.get(name, 0) + manifest_bytes.get(name, 0),
            )
            for name in names
        ]

    def compartment_usage(self, compartment: str | None = None) -> list[Usage]:
        c = t.compartments.c
        with self._read() as conn:
            query = select(c.id, c.name).order_by(c.name)
            if compartment is not None:
                query = query.where(c.name == compartment)
            rows: list[Any] = list(conn.execute(query))
        result = []
        for row in rows:
            charged = sum(u.charged_bytes for u in self.repository_usage(row.name))
            result.append(Usage(row.name, charged, *self._distinct_bytes(row.id)))
        return result

    def _distinct_bytes(self, compartment_id: int) -> tuple[int, int]:
        """(logical, exclusive) bytes of a compartment: distinct blobs its repositories link,
        and those no repository outside it links; plus its manifests."""
        inside = select(_r.c.id).where(_r.c.compartment_id == compartment_id)
        linked = select(_rb.c.digest).distinct().where(_rb.c.repository_id.in_(inside)).subquery()
        outside = exists().where(_other.c.digest == linked.c.digest, _other.c.repository_id.not_in(inside))
        total = (
            select(func.coalesce(func.sum(_b.c.size), 0)).join(linked, linked.c.digest == _b.c.digest).where(_live())
        )
        manifests = select(func.coalesce(func.sum(t.manifests.c.size), 0)).where(
            t.manifests.c.repository_id.in_(inside)
        )
        with self._read() as conn:
            extra = int(conn.execute(manifests).scalar_one())
            logical = int(conn.execute(total).scalar_one()) + extra
            exclusive = int(conn.execute(total.where(~outside)).scalar_one()) + extra
        return logical, exclusive
