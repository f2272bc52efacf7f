"""Garbage collection: unreferenced blobs, expired uploads, and files the metadata forgot.

Safe to run beside a serving registry, on any number of workers or replicas:

- Nothing younger than the grace period is touched: a blob uploaded or mounted within it may
  be about to be named by a manifest, an upload file may belong to a session being created.
- A blob's bytes are deleted only through the two-step protocol of ``metadata/sql_gc.py``:
  condemned (unlinked everywhere) in one transaction, then deleted under the row lock that any
  push of the same digest must take to revive it. So a manifest accepted with ``201`` never
  names bytes that a collection removes, whatever the interleaving.
- Bytes in storage that the metadata does not know (a crash between an upload's move and its
  row) are condemned the same way, unless an upload session is committing them.
- A session whose scratch bytes are gone is dropped, unless it was committing and its blob is
  in place: the client's retried ``PUT`` finishes that one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelyard.domain.digest import Digest
from modelyard.metadata.base import MetadataStore
from modelyard.storage.base import BlobStore

_BATCH = 500


# An upload's scratch bytes are created a moment before its session row: a file without a row
# younger than this is an upload being started, not a crash's leftover -- whatever the grace
# period (with none, gc took the file of an upload that had just begun, and its client got 404).
ORPHAN_UPLOAD_AGE = timedelta(minutes=10)


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
        self._condemn_unreferenced(now - grace, report)
        self._condemn_orphan_files((now - grace).timestamp(), report)
        if not dry_run:
            self._purge(report)
        self._uploads(now - upload_ttl, now - grace, report, orphan_cutoff=min(now - grace, now - ORPHAN_UPLOAD_AGE))
        return report

    def _condemn_unreferenced(self, cutoff: datetime, report: GcReport) -> None:
        after = ""
        while batch := self._meta.garbage.unreferenced_blobs(cutoff, _BATCH, after):
            sizes = dict(batch)
            after = batch[-1][0]
            chosen = list(sizes) if report.dry_run else self._meta.garbage.condemn(list(sizes), cutoff)
            for digest in chosen:
                report.blobs.append(digest)
                report.blob_bytes += sizes[digest]

    def _condemn_orphan_files(self, cutoff: float, report: GcReport) -> None:
        candidates = [item for item in self._store.scan_blobs() if item.modified < cutoff]
        for start in range(0, len(candidates), _BATCH):
            chunk = candidates[start : start + _BATCH]
            known = self._meta.garbage.known_blobs([item.key for item in chunk])
            sizes = {item.key: item.size for item in chunk if item.key not in known}
            chosen = list(sizes) if report.dry_run else self._meta.garbage.condemn_orphans(sizes)
            for digest in chosen:
                report.orphan_files.append(digest)
                report.orphan_bytes += sizes[digest]

    def _purge(self, report: GcReport) -> None:
        """Delete the bytes of every condemned blob (this run's, and any a crashed run left)."""
        counted = set(report.blobs) | set(report.orphan_files)
        while batch := self._meta.garbage.condemned_blobs(_BATCH):
            sizes = dict(batch)
            purged = self._meta.garbage.purge(list(sizes), self._delete_bytes)
            for digest in purged:
                if digest not in counted:
                    report.blobs.append(digest)
                    report.blob_bytes += sizes[digest]
            if not purged:
                return  # every remaining one was revived meanwhile

    def _delete_bytes(self, digest: str) -> None:
        self._store.delete(Digest.parse(digest))

    def _uploads(self, expired: datetime, cutoff: datetime, report: GcReport, *, orphan_cutoff: datetime) -> None:
        sizes = {item.key: item for item in self._store.scan_uploads()}
        stale = self._meta.garbage.stale_uploads(expired)
        # Sessions whose bytes are gone can never take another chunk; one that was committing
        # and whose blob is in place waits for its client's retried PUT (until it expires).
        bytesless = [
            upload_id
            for upload_id, committing in self._meta.garbage.idle_uploads(cutoff)
            if upload_id not in sizes and (committing is None or self._store.size(Digest.parse(committing)) is None)
        ]
        dead = list(dict.fromkeys([*stale, *bytesless]))
        if dead and not report.dry_run:
            self._meta.garbage.delete_uploads(dead)
        files = [key for key, item in sizes.items() if item.modified < orphan_cutoff.timestamp()]
        known = self._meta.garbage.known_uploads(files) if files else set()
        orphans = [key for key in files if key not in known]
        for upload_id in dict.fromkeys([*dead, *orphans]):
            if not report.dry_run:
                self._store.abort_upload(upload_id)
            report.uploads.append(upload_id)
            item = sizes.get(upload_id)
            report.upload_bytes += item.size if item else 0
