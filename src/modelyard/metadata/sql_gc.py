"""What garbage collection asks of the metadata: unreferenced blobs and stale uploads.

Deleting a blob's bytes and its row cannot be one atomic act, and a push of the same digest
may arrive at any instant. So a blob dies in two steps, each a transaction that first locks
the blob rows (``FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) and only then
re-reads what it decides on -- at READ COMMITTED a statement run after the lock is granted
sees every transaction that held it:

1. :meth:`SqlGarbage.condemn`: a blob that is still unreferenced and was last linked before
   the cutoff is unlinked from every repository and marked ``condemned_at``. From here on
   no repository has it: a manifest naming it is refused, a mount does not find it.
2. :meth:`SqlGarbage.purge`: for each blob still condemned, the bytes are deleted (by the
   caller's callback, inside the transaction, under the row lock) and then the row.

Whoever brings the blob back -- an upload's commit or a mount -- revives the row with an
upsert that waits on that same lock and clears ``condemned_at`` (see
:meth:`~modelyard.metadata.sql_base.SqlPart._claim_blob`), then puts or checks the bytes
while holding it. So bytes are only ever deleted under a condemned row nobody revived, and a
revived row always has its bytes. A crash between the two steps or inside step 2 leaves a
condemned row, which no repository links and the next collection finishes.

Files that the metadata never knew (a crash between an upload's move and its row) take the
same road: :meth:`SqlGarbage.condemn_orphans` inserts a condemned row for them first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, or_, select, update

from modelyard.metadata import tables as t
from modelyard.metadata.clock import utcnow
from modelyard.metadata.sql_base import SqlPart

_b = t.blobs.c


def _lock_blobs(conn: Connection, digests: list[str]) -> None:
    """Lock the rows of ``digests`` (in a fixed order, so two lockers cannot deadlock)."""
    conn.execute(select(_b.digest).where(_b.digest.in_(digests)).order_by(_b.digest).with_for_update())


class SqlGarbage(SqlPart):
    def _unreferenced(self, cutoff: datetime) -> ColumnElement[bool]:
        referenced = exists().where(
            t.manifest_references.c.digest == _b.digest, t.manifest_references.c.is_manifest == 0
        )
        recent = or_(_b.last_linked_at.is_(None) & (_b.created_at >= cutoff), _b.last_linked_at >= cutoff)
        return and_(_b.condemned_at.is_(None), ~referenced, ~recent)

    def unreferenced_blobs(self, cutoff: datetime, limit: int, after: str = "") -> list[tuple[str, int]]:
        """Live blobs that are garbage, in digest order after ``after``."""
        query = (
            select(_b.digest, _b.size)
            .where(self._unreferenced(cutoff), _b.digest > after)
            .order_by(_b.digest)
            .limit(limit)
        )
        with self._read() as conn:
            return [(row.digest, int(row.size)) for row in conn.execute(query)]

    def condemn(self, digests: list[str], cutoff: datetime) -> list[str]:
        """Step 1: unlink and condemn those of ``digests`` still garbage; returns them."""

        def work(conn: Connection) -> list[str]:
            _lock_blobs(conn, digests)
            still = list(
                conn.execute(select(_b.digest).where(_b.digest.in_(digests), self._unreferenced(cutoff))).scalars()
            )
            if still:
                conn.execute(delete(t.repository_blobs).where(t.repository_blobs.c.digest.in_(still)))
                conn.execute(update(t.blobs).where(_b.digest.in_(still)).values(condemned_at=utcnow()))
            return still

        return self._store.write(work)

    def condemn_orphans(self, sizes: dict[str, int]) -> list[str]:
        """Give stored bytes that have no row a condemned row; returns the digests that got one."""

        def work(conn: Connection) -> list[str]:
            now = utcnow()
            added: list[str] = []
            for digest in sorted(sizes):
                values = {"digest": digest, "size": sizes[digest], "created_at": now, "condemned_at": now}
                if self._insert_ignore(conn, t.blobs, values):
                    added.append(digest)
            return added

        return self._store.write(work)

    def condemned_blobs(self, limit: int) -> list[tuple[str, int]]:
        query = select(_b.digest, _b.size).where(_b.condemned_at.is_not(None)).order_by(_b.digest).limit(limit)
        with self._read() as conn:
            return [(row.digest, int(row.size)) for row in conn.execute(query)]

    def purge(self, digests: list[str], remove_bytes: Callable[[str], None]) -> list[str]:
        """Step 2: for each of ``digests`` still condemned, ``remove_bytes(digest)`` then drop the row."""

        def work(conn: Connection) -> list[str]:
            _lock_blobs(conn, digests)
            still = list(
                conn.execute(select(_b.digest).where(_b.digest.in_(digests), _b.condemned_at.is_not(None))).scalars()
            )
            for digest in still:
                remove_bytes(digest)
            if still:
                conn.execute(delete(t.blobs).where(_b.digest.in_(still)))
            return still

        return self._store.write(work)

    def stale_uploads(self, cutoff: datetime) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(t.uploads.c.id).where(t.uploads.c.updated_at < cutoff)).scalars())

    def idle_uploads(self, cutoff: datetime) -> list[tuple[str, str | None]]:
        """``(id, committing digest)`` of sessions untouched since ``cutoff``."""
        u = t.uploads.c
        with self._read() as conn:
            return [
                (row.id, row.committing_digest)
                for row in conn.execute(select(u.id, u.committing_digest).where(u.updated_at < cutoff))
            ]

    def delete_uploads(self, upload_ids: list[str]) -> None:
        self._store.write(lambda conn: conn.execute(delete(t.uploads).where(t.uploads.c.id.in_(upload_ids))))

    def known_blobs(self, digests: list[str]) -> set[str]:
        """Those of ``digests`` that have a row, or that an upload is committing."""
        u = t.uploads.c
        with self._read() as conn:
            rows = set(conn.execute(select(_b.digest).where(_b.digest.in_(digests))).scalars())
            rows.update(conn.execute(select(u.committing_digest).where(u.committing_digest.in_(digests))).scalars())
            return rows

    def known_uploads(self, upload_ids: list[str]) -> set[str]:
        with self._read() as conn:
            return set(conn.execute(select(t.uploads.c.id).where(t.uploads.c.id.in_(upload_ids))).scalars())
