"""The :class:`BlobStore` protocol that every storage backend implements.

A blob store is dumb on purpose (CNCF Distribution's storage driver): it knows content-addressed
bytes and the scratch space of uploads in progress, nothing of repositories, links or tags --
those are metadata. Everything here is what an object store such as S3 can do as well as a
filesystem: whole-object writes only at commit, appends to an upload without truncation (bytes
past the acknowledged offset are simply ignored on the next open), streamed reads of a byte
range, and an optional redirect URL for downloads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelyard.domain.digest import Digest


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A blob or upload found by a scan: its key, size and last modification (epoch seconds)."""

    key: str
    size: int
    modified: float


class UploadBusyError(Exception):
    """Another request is writing to the same upload right now.

    ``retry_after``: seconds until the upload may be free again -- at once for a live writer that
    finishes (the filesystem's lock dies with its request), the rest of the lease for an object
    store's writer that stopped renewing (a killed replica).
    """

    def __init__(self, upload_id: str, retry_after: float = 1.0) -> None:
        super().__init__(upload_id)
        self.retry_after = retry_after


class UploadMissingError(Exception):
    """The upload's bytes are gone (cancelled, committed, or cleaned up)."""


class BlobMissingError(Exception):
    """The blob's bytes are not in the store."""


class UploadWriter(Protocol):
    """Appends to one upload. Methods block: callers run them in a worker thread.

    A writer that is closed without :meth:`sync` after a failed chunk leaves nothing the
    next :meth:`BlobStore.open_upload` at the acknowledged offset would see.
    """

    def write(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Append all ``chunks`` (one vectored write where the backend can). The writer must not
        keep a reference to them: the caller reuses its buffers once this returns."""

    def sync(self) -> None:
        """Make everything written so far durable: from here it counts as acknowledged."""

    def close(self) -> None:
        """Release the writer and its lock."""


class BlobStore(Protocol):
    """Content-addressed blobs plus the scratch space of uploads.

    Blocking methods are called from worker threads by the services; ``local_path`` and
    ``redirect_url`` are the hot-path calls of a download and must be cheap.
    """

    def local_path(self, digest: Digest) -> Path | None:
        """A local file holding the blob, for zero-copy ``sendfile``; ``None`` if not local."""

    def redirect_url(self, digest: Digest, *, expires_in: int) -> str | None:
        """A short-lived URL a client may download the blob from directly, or ``None``
        (the registry streams the bytes itself)."""

    def size(self, digest: Digest) -> int | None:
        """The stored size of a blob, or ``None`` if it is not stored."""

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The blob's bytes ``[start, end)`` (to its end when ``end`` is ``None``), streamed in
        pieces of bounded size. Raises :class:`BlobMissingError` if it is not stored."""

    def delete(self, digest: Digest) -> None:
        """Remove a blob's bytes (garbage collection only); a missing blob is not an error."""

    def start_upload(self, upload_id: str) -> None:
        """Create the empty scratch object of a new upload."""

    def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        """Open an upload for appending after its first ``offset`` bytes; anything a failed
        request wrote past them is dropped.

        Raises :class:`UploadBusyError` if another writer holds it and
        :class:`UploadMissingError` if it does not exist.
        """

    def read_upload(self, upload_id: str, length: int) -> Iterator[bytes]:
        """The first ``length`` bytes of an upload, in large pieces (to rebuild a hash)."""

    def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        """Durably and atomically move the first ``size`` bytes of a verified upload (its
        acknowledged ones) to their content address.

        Idempotent: with the upload gone and the blob stored it does nothing (a retried
        commit); with both gone it raises :class:`UploadMissingError`.
        """

    def abort_upload(self, upload_id: str) -> None:
        """Remove an upload's scratch bytes; a missing upload is not an error."""

    def scan_blobs(self) -> Iterator[StoredItem]:
        """Every stored blob (for garbage collection to find bytes the metadata has forgotten)."""

    def scan_uploads(self) -> Iterator[StoredItem]:
        """Every upload's scratch object."""
