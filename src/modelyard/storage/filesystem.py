"""Blobs on a local filesystem: the embedded default.

Writes go to ``uploads/<id>``; a commit fsyncs the file, renames it to its content address
and fsyncs the directory, so a crash at any instant leaves either no blob or the whole
verified blob, never a torn one. Downloads are served by the API with ``sendfile`` straight
from :meth:`FilesystemBlobStore.local_path`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import cast

from modelyard.domain.digest import Digest
from modelyard.storage import paths
from modelyard.storage.base import BlobMissingError, StoredItem, UploadBusyError, UploadMissingError

_READ_SIZE = 4 * 1024 * 1024
_WRITEBACK_BYTES = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of the range's dirty pages, don't wait


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range(2)`` (not in ``os``), or ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_sync_file_range = _load_sync_file_range()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileUploadWriter:
    """An exclusive (``flock``) writer on one upload file, appending after ``offset`` bytes.

    With ``fsync`` on, every 8 MiB written is handed to the disk at once (``sync_file_range``,
    which does not wait): left to the kernel, a multi-GB body stays dirty in memory until the
    closing ``fsync``, which then writes all of it while the client waits (2 GiB: ~2.4 s here).
    """

    def __init__(self, fd: int, fsync: bool, offset: int) -> None:
        self._fd = fd
        self._fsync = fsync
        # Bytes past the acknowledged offset are from a request that died half-way.
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        self._position = offset
        self._written_back = offset

    def write(self, chunks: Sequence[bytes | memoryview]) -> None:
        pending = [memoryview(c) for c in chunks if c]
        self._position += sum(piece.nbytes for piece in pending)
        while pending:
            written = os.writev(self._fd, pending[:1024])
            # writev may write less than asked: drop what went out and go on.
            while written and pending:
                head = pending[0]
                if written >= len(head):
                    written -= len(head)
                    pending.pop(0)
                else:
                    pending[0] = head[written:]
                    written = 0
        if self._fsync and _sync_file_range is not None and self._position - self._written_back >= _WRITEBACK_BYTES:
            # Failure is harmless: the closing fsync writes whatever is left (and reports errors).
            _sync_file_range(self._fd, self._written_back, self._position - self._written_back, _SYNC_FILE_RANGE_WRITE)
            self._written_back = self._position

    def sync(self) -> None:
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1


class FilesystemBlobStore:
    """:class:`~modelyard.storage.base.BlobStore` over a directory tree."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._fsync = fsync
        paths.uploads_dir(root).mkdir(parents=True, exist_ok=True)
        (root / "blobs").mkdir(parents=True, exist_ok=True)

    def local_path(self, digest: Digest) -> Path | None:
        return paths.blob_path(self.root, digest)

    def redirect_url(self, digest: Digest, *, expires_in: int) -> str | None:
        return None  # served from the local file with sendfile

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = open(paths.blob_path(self.root, digest), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise BlobMissingError(str(digest)) from None
        with handle:
            handle.seek(start)
            remaining = None if end is None else max(end - start, 0)
            while remaining is None or remaining > 0:
                piece = handle.read(_READ_SIZE if remaining is None else min(_READ_SIZE, remaining))
                if not piece:
                    return
                if remaining is not None:
                    remaining -= len(piece)
                yield piece

    def size(self, digest: Digest) -> int | None:
        try:
            return paths.blob_path(self.root, digest).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, digest: Digest) -> None:
        paths.blob_path(self.root, digest).unlink(missing_ok=True)

    def start_upload(self, upload_id: str) -> None:
        fd = os.open(paths.upload_path(self.root, upload_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)

    def open_upload(self, upload_id: str, offset: int) -> FileUploadWriter:
        try:
            fd = os.open(paths.upload_path(self.root, upload_id), os.O_WRONLY)
        except FileNotFoundError:
            raise UploadMissingError(upload_id) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise UploadBusyError(upload_id) from None
            raise
        return FileUploadWriter(fd, self._fsync, offset)

    def read_upload(self, upload_id: str, length: int) -> Iterator[bytes]:
        try:
            handle = open(paths.upload_path(self.root, upload_id), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise UploadMissingError(upload_id) from None
        with handle:
            remaining = length
            while remaining > 0:
                piece = handle.read(min(_READ_SIZE, remaining))
                if not piece:
                    raise UploadMissingError(f"{upload_id} is shorter than its acknowledged offset")
                remaining -= len(piece)
                yield piece

    def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        source = paths.upload_path(self.root, upload_id)
        target = paths.blob_path(self.root, digest)
        try:
            fd = os.open(source, os.O_WRONLY)
        except FileNotFoundError:
            if target.exists():
                return  # moved by an earlier attempt of this same commit
            raise UploadMissingError(upload_id) from None
        try:
            os.ftruncate(fd, size)  # drop what a failed chunk may have left past the acknowledged bytes
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            # The same bytes are stored already: content addressing means nothing to do.
            source.unlink()
            return
        os.replace(source, target)
        # The file keeps the upload's modification time; a fresh one says "just stored".
        os.utime(target)
        if self._fsync:
            _fsync_dir(target.parent)

    def scan_blobs(self) -> Iterator[StoredItem]:
        for algorithm_dir in sorted((self.root / "blobs").iterdir()):
            for path in algorithm_dir.glob("??/*"):
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    yield StoredItem(f"{algorithm_dir.name}:{path.name}", st.st_size, st.st_mtime)

    def scan_uploads(self) -> Iterator[StoredItem]:
        for path in paths.uploads_dir(self.root).iterdir():
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                yield StoredItem(path.name, st.st_size, st.st_mtime)

    def abort_upload(self, upload_id: str) -> None:
        paths.upload_path(self.root, upload_id).unlink(missing_ok=True)
