"""One upstream download of one blob, read by every client that asks for it meanwhile.

Why a spool file: the first client must get bytes as they arrive, and clients that come later
must get them from byte 0 -- without holding the blob in memory (memory stays flat whatever
the size) and whatever the blob store is (an S3 upload's parts are not readable while it is
written). So the download appends each chunk to a local spool file as well as feeding it to the
normal upload path (which hashes it and commits it to the store); readers tail the spool file
with ``pread`` up to what was written, waking on each chunk.

Why the hold-back: nothing proves the bytes right until the last one arrived and the upload's
commit matched the digest. Until then a reader gets all of its range but its last byte, so no
client ever receives a complete wrong blob: on a mismatch the download fails, the bytes are
dropped (the upload is cancelled, nothing is stored) and every reader's stream raises, which
breaks its response off short of its ``Content-Length``.

The spool file is named and locked so that other worker processes can follow the download too
(``spool.py``); it is unlinked and unlocked as the download ends (readers keep their open
descriptors), and a reader that starts after a verified download reads the stored blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from modelyard.domain.errors import RegistryError
from modelyard.services.runner import BlockingRunner

PIECE = 1 << 20
StoredReader = Callable[[int, int], AsyncIterator[bytes]]


class Flight:
    """The download this process runs into ``spool``; ``fd`` writes it and holds its lock."""

    def __init__(self, spool: Path, fd: int, runner: BlockingRunner) -> None:
        self.spool = spool
        self._fd = fd
        self._run = runner.run
        self.size: int | None = None
        self.written = 0
        self.verified = False
        self.error: RegistryError | None = None
        self._begun: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._progress = asyncio.Event()
        self._finished = False

    # -- the download's side ----------------------------------------------------------------

    def begin(self, size: int | None) -> None:
        """The upload is open and the upstream said the size: readers may start."""
        self.size = size
        if not self._begun.done():
            self._begun.set_result(size)

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the spool file (blocking: called in a worker thread)."""
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def advance(self, count: int) -> None:
        """``count`` more bytes are in the spool file."""
        self.written += count
        self._wake()

    def finish(self, error: RegistryError | None) -> None:
        """The download ended: stored and verified (``error`` is ``None``), or failed."""
        if self._finished:
            return
        self._finished = True
        self.error = error
        self.verified = error is None
        if not self._begun.done():
            if error is not None:
                self._begun.set_exception(error)
                self._begun.exception()  # retrieved: the readers that wait for it get it
            else:
                self._begun.set_result(self.written)
        with contextlib.suppress(OSError):
            self.spool.unlink(missing_ok=True)  # unlinked first, then unlocked: see spool.py
        os.close(self._fd)
        self._wake()

    def _wake(self) -> None:
        event, self._progress = self._progress, asyncio.Event()
        event.set()

    # -- the readers' side ------------------------------------------------------------------

    async def started(self) -> int | None:
        """Wait until the download began; its size (``None``: the upstream did not say)."""
        return await asyncio.shield(self._begun)

    async def done(self) -> None:
        while not self._finished:
            await self._progress.wait()
        if self.error is not None:
            raise self.error

    def reader(self, stored: StoredReader) -> StoredReader:
        """A function giving the bytes ``[start, end)`` as they arrive (``stored``: how to read
        them once the download was verified and its spool file is gone)."""

        def pieces(start: int, end: int) -> AsyncIterator[bytes]:
            if self.verified:
                return stored(start, end)
            if self.error is not None:
                raise self.error
            # Opened now, on the loop, while the download cannot end in between: the file exists.
            fd = os.open(self.spool, os.O_RDONLY)
            return self._tail(fd, start, end)

        return pieces

    async def _tail(self, fd: int, start: int, end: int) -> AsyncIterator[bytes]:
        position = start
        try:
            while True:
                limit = min(end, self.written)
                if not self.verified:
                    limit = min(limit, end - 1)  # the hold-back: see the module docstring
                if position < limit:
                    piece = await self._run(os.pread, fd, min(PIECE, limit - position), position)
                    if not piece:  # the spool is shorter than written: cannot happen, but never spin
                        raise OSError(f"the spool file {self.spool} ended early")
                    position += len(piece)
                    yield piece
                    continue
                if self.error is not None:
                    raise self.error
                if self.verified and position >= min(end, self.written):
                    return
                await self._progress.wait()
        finally:
            os.close(fd)
