"""Numbers about the whole registry, for ``/metrics`` (read by ``metadata/sql_stats.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StorageStats:
    blob_bytes: int
    blobs: int
    upload_sessions: int
    webhook_deliveries_pending: int
