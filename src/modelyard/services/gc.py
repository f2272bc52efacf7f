"""Garbage collection: unreferenced blobs, expired uploads, and files the metadata forgot.

Safe to run beside a serving registry. Nothing younger than the grace period is touched: a
blob uploaded or mounted within it may be about to be named by a manifest, an upload file may
belong to a session being created, and a blob file may be between its rename and its database
row (a crash at that instant leaves exactly such a file, which a later collection removes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelyard.domain.digest import Digest
from modelyard.metadata.base import MetadataStore
from modelyard.storage.base import BlobStore

_BATCH = 500


@dataclass(slots=True)
class GcReport:
    dry_run: bool
    blobs: list[str] = field(default_factory=list)
    blob_bytes: int = 0
    orphan_files: list[str] = field(default_factory=list)
    orphan_bytes: int = 0
    uploads: list[str] = field(default_factory=list)
    upload_bytes: int = 0

    @property
    def freed_bytes(self) -> int:
        return self.blob_bytes + self.orphan_bytes + self.upload_bytes


class GarbageCollector:
    def __init__(self, metadata: MetadataStore, store: BlobStore) -> None:
        self._meta = metadata
        self._store = store

    def collect(self, *, grace: timedelta, upload_ttl: timedelta, dry_run: bool = False) -> GcReport:
        now = datetime.now(UTC)
        report = GcReport(dry_run)
        self._blobs(now - grace, report)
        self._orphan_blob_files((now - grace).timestamp(), report)
        self._uploads(now - upload_ttl, (now - grace).timestamp(), report)
        return report

    def _blobs(self, cutoff: datetime, report: GcReport) -> None:
        seen: set[str] = set()
        while True:
            batch = [(d, s) for d, s in self._meta.garbage.unreferenced_blobs(cutoff, _BATCH) if d not in seen]
            if not batch:
                return
            seen.update(d for d, _ in batch)
            sizes = dict(batch)
            deleted = list(sizes) if report.dry_run else self._meta.garbage.delete_unreferenced(list(sizes), cutoff)
            for digest in deleted:
                if not report.dry_run:
                    self._store.delete(Digest.parse(digest))
                report.blobs.append(digest)
                report.blob_bytes += sizes[digest]

    def _orphan_blob_files(self, cutoff: float, report: GcReport) -> None:
        candidates = [item for item in self._store.scan_blobs() if item.modified < cutoff]
        for start in range(0, len(candidates), _BATCH):
            chunk = candidates[start : start + _BATCH]
            known = self._meta.garbage.known_blobs([item.key for item in chunk])
            for item in chunk:
                if item.key in known:
                    continue
                if not report.dry_run:
                    self._store.delete(Digest.parse(item.key))
                report.orphan_files.append(item.key)
                report.orphan_bytes += item.size

    def _uploads(self, expired: datetime, cutoff: float, report: GcReport) -> None:
        sizes = {item.key: item for item in self._store.scan_uploads()}
        stale = self._meta.garbage.stale_uploads(expired)
        if stale and not report.dry_run:
            self._meta.garbage.delete_uploads(stale)
        files = [key for key, item in sizes.items() if item.modified < cutoff]
        known = self._meta.garbage.known_uploads(files) if files else set()
        orphans = [key for key in files if key not in known]
        for upload_id in dict.fromkeys([*stale, *orphans]):
            if not report.dry_run:
                self._store.abort_upload(upload_id)
            report.uploads.append(upload_id)
            item = sizes.get(upload_id)
            report.upload_bytes += item.size if item else 0
