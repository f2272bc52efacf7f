"""What garbage collection asks of the metadata: unreferenced blobs and stale uploads.

A blob is garbage when no manifest of any repository refers to it and it was last linked
before the cutoff. Deleting re-checks both conditions inside the deleting transaction, and a
manifest push re-checks its blobs inside its own, so a push racing a collection either sees
its blobs or is refused cleanly -- never a manifest pointing at deleted bytes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, or_, select

from modelyard.metadata import tables as t
from modelyard.metadata.sql_base import SqlPart


class SqlGarbage(SqlPart):
    def _unreferenced(self, cutoff: datetime) -> ColumnElement[bool]:
        b = t.blobs.c
        referenced = exists().where(
            t.manifest_references.c.digest == b.digest, t.manifest_references.c.is_manifest == 0
        )
        recent = or_(b.last_linked_at.is_(None) & (b.created_at >= cutoff), b.last_linked_at >= cutoff)
        return and_(~referenced, ~recent)

    def unreferenced_blobs(self, cutoff: datetime, limit: int) -> list[tuple[str, int]]:
        query = select(t.blobs.c.digest, t.blobs.c.size).where(self._unreferenced(cutoff)).limit(limit)
        with self._read() as conn:
            return [(row.digest, int(row.size)) for row in conn.execute(query)]

    def delete_unreferenced(self, digests: list[str], cutoff: datetime) -> list[str]:
        """Delete those of ``digests`` that are still garbage; returns the ones deleted."""

        def work(conn: Connection) -> list[str]:
            still = list(
                conn.execute(
                    select(t.blobs.c.digest).where(t.blobs.c.digest.in_(digests), self._unreferenced(cutoff))
                ).scalars()
            )
            if still:
                conn.execute(delete(t.repository_blobs).where(t.repository_blobs.c.digest.in_(still)))
                conn.execute(delete(t.blobs).where(t.blobs.c.digest.in_(still)))
            return still

        return self._store.write(work)

    def stale_uploads(self, cutoff: datetime) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(t.uploads.c.id).where(t.uploads.c.updated_at < cutoff)).scalars())

    def delete_uploads(self, upload_ids: list[str]) -> None:
        self._store.write(lambda conn: conn.execute(delete(t.uploads).where(t.uploads.c.id.in_(upload_ids))))

    def known_blobs(self, digests: list[str]) -> set[str]:
        with self._read() as conn:
            return set(conn.execute(select(t.blobs.c.digest).where(t.blobs.c.digest.in_(digests))).scalars())

    def known_uploads(self, upload_ids: list[str]) -> set[str]:
        with self._read() as conn:
            return set(conn.execute(select(t.uploads.c.id).where(t.uploads.c.id.in_(upload_ids))).scalars())
