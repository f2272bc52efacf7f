"""The :class:`BlobStore` protocol that every storage backend implements."""

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
    """Another request is writing to the same upload right now."""


class UploadMissingError(Exception):
    """The upload's bytes are gone (cancelled, committed, or cleaned up)."""


class UploadWriter(Protocol):
    """Appends to one upload. Methods block: callers run them in a worker thread."""

    def write(self, chunks: Sequence[bytes]) -> None:
        """Append all ``chunks`` (one vectored write where the backend can)."""

    def sync(self) -> None:
        """Make everything written so far durable."""

    def truncate(self, size: int) -> None:
        """Drop bytes past ``size`` (undo a chunk that failed half-way)."""

    def close(self) -> None:
        """Release the writer and its lock."""


class BlobStore(Protocol):
    """Content-addressed blobs plus the scratch space of uploads.

    Blocking methods are called from worker threads by the services; ``local_path`` is the
    one hot-path call and must be cheap.
    """

    def local_path(self, digest: Digest) -> Path | None:
        """A local file holding the blob, for zero-copy ``sendfile``; ``None`` if not local."""

    def size(self, digest: Digest) -> int | None:
        """The stored size of a blob, or ``None`` if it is not stored."""

    def delete(self, digest: Digest) -> None:
        """Remove a blob's bytes (garbage collection only)."""

    def start_upload(self, upload_id: str) -> None:
        """Create the empty scratch object of a new upload."""

    def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        """Open an upload for appending at ``offset``, dropping anything past it.

        Raises :class:`UploadBusyError` if another writer holds it and
        :class:`UploadMissingError` if it does not exist.
        """

    def read_upload(self, upload_id: str, length: int) -> Iterator[bytes]:
        """The first ``length`` bytes of an upload, in large pieces (to rebuild a hash)."""

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        """Durably and atomically move a verified upload to its content address.

        Idempotent: with the upload gone and the blob stored it does nothing (a retried
        commit); with both gone it raises :class:`UploadMissingError`.
        """

    def abort_upload(self, upload_id: str) -> None:
        """Remove an upload's scratch bytes; a missing upload is not an error."""

    def scan_blobs(self) -> Iterator[StoredItem]:
        """Every stored blob (for garbage collection to find bytes the metadata has forgotten)."""

    def scan_uploads(self) -> Iterator[StoredItem]:
        """Every upload's scratch object."""
