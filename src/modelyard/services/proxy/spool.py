"""Spool files shared between the worker processes of one machine, so that concurrent cold pulls
make one upstream download even when they land on different workers (``serve --workers N``).

A download's spool file has a name derived from (repository, digest), and the process that
downloads holds an exclusive ``flock`` on it for as long as the download runs (until the blob
is stored and verified, or failed). :func:`claim` makes a process the downloader: it creates
the file under a temporary name, locks it, then ``link``\\ s it to the shared name, which fails
if the name exists -- so the name never appears unlocked. Another process finding the name
locked becomes a :class:`Follower`: it tails the file as it grows (polling its size; there is no
cross-process wake-up), holds back the last byte, and once the lock is released asks the
metadata whether the blob was stored (verified) or not (failed). A name found *unlocked* belongs
to a process that died mid-download: it is removed and claimed afresh.

Replicas on other machines do not share the spool directory; each fetches a cold blob once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.services.runner import BlockingRunner

PIECE = 1 << 20
POLL = 0.02
#: A spool file nobody holds and nobody touched for this long is debris of a dead process.
STALE_AFTER = 600.0
StoredReader = Callable[[int, int], AsyncIterator[bytes]]


def spool_name(repository: str, digest: str) -> str:
    return hashlib.sha256(f"{repository}@{digest}".encode()).hexdigest() + ".part"


def _locked_by_another(fd: int) -> bool:
    """Whether another open file holds an exclusive lock on ``fd``'s file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def claim(path: Path) -> int | None:
    """Become the downloader of ``path``: a write descriptor holding its lock, or ``None`` when
    a live process downloads it already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for _ in range(3):
            try:
                os.link(temporary, path)
            except FileExistsError:
                if held(path):
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its downloader died
                continue
            return fd
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        temporary.unlink(missing_ok=True)


def held(path: Path) -> bool:
    """Whether a live process is downloading into ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return _locked_by_another(fd)
    finally:
        os.close(fd)


def sweep(directory: Path) -> None:
    """Remove spool files that no process holds and none touched for :data:`STALE_AFTER`."""
    if not directory.is_dir():
        return
    now = time.time()
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > STALE_AFTER and not held(path):
                path.unlink()


class Follower:
    """Reads a download that another process runs (see the module docstring).

    ``stored``: whether the blob is in the repository now (asked once the downloader let go).
    """

    def __init__(self, path: Path, runner: BlockingRunner, stored: Callable[[], Awaitable[bool]]) -> None:
        self.path = path
        self._run = runner.run
        self._stored = stored

    async def done(self) -> None:
        """Wait until the downloader let go; raise if the blob was not stored."""
        while held(self.path):
            await asyncio.sleep(POLL)
        if not await self._stored():
            raise self._failed()

    def reader(self, stored: StoredReader) -> StoredReader:
        def pieces(start: int, end: int) -> AsyncIterator[bytes]:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:  # finished meanwhile: the store has it, or says it has not
                return stored(start, end)
            return self._tail(fd, start, end)

        return pieces

    def _failed(self) -> RegistryError:
        return RegistryError(
            ErrorCode.BLOB_UNKNOWN, "the upstream download that another worker ran for this blob failed; retry"
        )

    async def _tail(self, fd: int, start: int, end: int) -> AsyncIterator[bytes]:
        position = start
        verified = False
        try:
            while True:
                written = os.fstat(fd).st_size
                limit = min(end, written) if verified else min(end - 1, written)
                if position < limit:
                    piece = await self._run(os.pread, fd, min(PIECE, limit - position), position)
                    position += len(piece)
                    yield piece
                    continue
                if verified:
                    if position >= min(end, written):
                        return
                elif not _locked_by_another(fd):
                    if not await self._stored():
                        raise self._failed()
                    verified = True
                    continue
                await asyncio.sleep(POLL)
        finally:
            os.close(fd)
