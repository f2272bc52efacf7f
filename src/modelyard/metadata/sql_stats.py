"""Whole-registry numbers for ``/metrics`` and the database check of ``/readyz``."""

from __future__ import annotations

from sqlalchemy import func, select, text

from modelyard.domain.operations import StorageStats
from modelyard.metadata import tables as t
from modelyard.metadata.sql_base import SqlPart


class SqlStats(SqlPart):
    def ping(self) -> None:
        """A round trip to the database (raises when it can't be reached)."""
        with self._read() as conn:
            conn.execute(text("SELECT 1"))

    def storage(self) -> StorageStats:
        """Bytes and blobs stored (blob rows not condemned by gc), open uploads, pending deliveries."""
        b = t.blobs.c
        with self._read() as conn:
            size, count = conn.execute(
                select(func.coalesce(func.sum(b.size), 0), func.count()).where(b.condemned_at.is_(None))
            ).one()
            uploads = conn.execute(select(func.count()).select_from(t.uploads)).scalar_one()
            pending = conn.execute(select(func.count()).where(t.webhook_deliveries.c.state == "pending")).scalar_one()
        return StorageStats(int(size), int(count), int(uploads), int(pending))
