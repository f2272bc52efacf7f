"""Garbage collection runs with a record: what each removed and the bytes it freed.

``services/gc.py`` collects; this records each collection (scheduled by the leading worker, or
``modelyard gc`` offline) as a maintenance run and a :class:`~modelyard.domain.events.GarbageCollected`
event, which ``GET /api/v1/gc/runs`` and ``modelyard gc --history`` read back. Dry runs are
reported, never recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard.domain.events import SYSTEM, Actor, GarbageCollected
from modelyard.domain.lifecycle import MaintenanceRun
from modelyard.metadata.lifecycle import LifecycleStore
from modelyard.services.audit import log_events
from modelyard.services.gc import GarbageCollector, GcReport

_DETAIL_LIMIT = 1000


class MaintenanceService:
    def __init__(self, store: LifecycleStore, gc: GarbageCollector) -> None:
        self._store = store
        self._gc = gc

    def collect_garbage(
        self,
        *,
        grace: timedelta,
        upload_ttl: timedelta,
        dry_run: bool = False,
        trigger: str = "schedule",
        actor: Actor = SYSTEM,
    ) -> tuple[GcReport, MaintenanceRun | None]:
        started = datetime.now(UTC)
        report = self._gc.collect(grace=grace, upload_ttl=upload_ttl, dry_run=dry_run)
        if dry_run:
            return report, None
        event = GarbageCollected(
            actor=actor, trigger=trigger, blobs=len(report.blobs), orphan_files=len(report.orphan_files),
            uploads=len(report.uploads), freed_bytes=report.freed_bytes,
        )  # fmt: skip
        run = self._store.record_run(
            MaintenanceRun(
                id=0, kind="gc", trigger=trigger, actor=actor.subject, scope=None, dry_run=False, started_at=started,
                finished_at=datetime.now(UTC), removed=len(report.blobs) + len(report.orphan_files),
                freed_bytes=report.freed_bytes,
                detail={"blobs": report.blobs[:_DETAIL_LIMIT], "blob_bytes": report.blob_bytes,
                        "orphan_files": len(report.orphan_files), "orphan_bytes": report.orphan_bytes,
                        "uploads": len(report.uploads), "upload_bytes": report.upload_bytes},
            ),
            events=[event],
        )  # fmt: skip
        log_events([event])
        return report, run

    def runs(self, kind: str | None, limit: int, before_id: int | None = None) -> list[MaintenanceRun]:
        return self._store.runs(kind, limit, before_id)
