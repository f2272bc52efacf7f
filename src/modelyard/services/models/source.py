"""Bounded reads of blob bytes for extraction, through :meth:`BlobStore.read` only.

Every extraction gets one :class:`Budget`: a number of bytes it may read in all and a deadline.
:class:`RangeFile` is a seekable, read-only file over one blob (or one slice of it) that asks the
store for exactly the bytes requested, so ``tarfile`` walking an uncompressed tar reads the
512-byte headers and seeks over the data, and a header parser reads only its header. A read
past the budget or the deadline raises :class:`LimitExceeded`, which extraction turns into a
reason, never an error of the push.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

from modelyard.domain.digest import Digest
from modelyard.storage.base import BlobMissingError, BlobStore


class LimitExceeded(Exception):
    """Extraction hit a bound (bytes, time, count); the message says which."""


class Unreadable(Exception):
    """A file or config could not be understood; the message says why, for a person."""


@dataclass(slots=True)
class Budget:
    """What one extraction may still read, and until when."""

    max_bytes: int
    seconds: float
    used: int = 0
    deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"extraction took longer than its {self.seconds:g} s limit")

    def spend(self, count: int) -> None:
        self.check_time()
        self.used += count
        if self.used > self.max_bytes:
            raise LimitExceeded(f"extraction would read more than its {self.max_bytes} byte limit")


class BlobReader:
    """Ranged reads of blobs for one extraction, charged to its :class:`Budget`."""

    def __init__(self, store: BlobStore, budget: Budget) -> None:
        self.store = store
        self.budget = budget

    def read(self, digest: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a blob (fewer if it is shorter)."""
        if end <= start:
            return b""
        self.budget.spend(end - start)
        try:
            return b"".join(self.store.read(Digest.parse(digest), start, end))
        except BlobMissingError:
            raise Unreadable(f"blob {digest} is not in storage") from None

    def open(self, digest: str, offset: int = 0, size: int | None = None) -> io.BufferedReader:
        """A buffered, seekable file over ``size`` bytes of a blob starting at ``offset``."""
        if size is None:
            size = self.store.size(Digest.parse(digest)) or 0
            size = max(size - offset, 0)
        return io.BufferedReader(RangeFile(self, digest, offset, size), buffer_size=64 * 1024)


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes of a blob from ``offset``."""

    def __init__(self, reader: BlobReader, digest: str, offset: int, size: int) -> None:
        super().__init__()
        self._reader = reader
        self._digest = digest
        self._offset = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(base + pos, 0)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        start = self._offset + self._pos
        data = self._reader.read(self._digest, start, start + want)
        count = len(data)
        buffer[:count] = data
        self._pos += count
        return count


def read_exact(stream: io.BufferedIOBase | io.BufferedReader, count: int, what: str) -> bytes:
    """Exactly ``count`` bytes, or :class:`Unreadable` naming ``what`` was cut short."""
    data = stream.read(count)
    if data is None or len(data) != count:
        raise Unreadable(f"{what} ends early (truncated file)")
    return data
