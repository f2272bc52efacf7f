"""Last-pulled times, recorded cheaply: in memory on each manifest GET, written in batches.

A manifest GET is the hottest read of a registry (tens of microseconds on SQLite); a database
write per GET would multiply its cost and serialize pulls on the write lock. So :meth:`record`
only sets a dictionary entry (the latest time per repository and digest), and :meth:`flush`
writes them all in one transaction every ``pull_flush_interval`` seconds, per process, and once
more when the process stops. Retention counts in days: minutes of lag do not matter, and a
crash loses at most one interval of pull times, never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from modelyard.metadata.errors import database_errors
from modelyard.metadata.lifecycle import LifecycleStore
from modelyard.services.runner import BlockingRunner

log = logging.getLogger("modelyard.pulls")


class PullRecorder:
    def __init__(self, store: LifecycleStore, runner: BlockingRunner, *, interval: float) -> None:
        self._store = store
        self._run = runner.run
        self.interval = interval
        # Epoch seconds, made datetimes at flush: ``datetime.now(UTC)`` on every GET cost ~2 %.
        self._pending: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        #: Batches written so far (one transaction each).
        self.flushes = 0

    def record(self, repository: str, digest: str) -> None:
        """Remember that ``digest`` of ``repository`` was pulled now (no I/O)."""
        self._pending[(repository, digest)] = time.time()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write what was recorded since the last flush in one transaction; returns how many.

        The dictionary is swapped on the event loop (where :meth:`record` runs), so the thread
        that writes owns its batch alone. A failed write puts the batch back for the next flush.
        """
        batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            pulls = [(r, d, datetime.fromtimestamp(at, UTC)) for (r, d), at in batch.items()]
            await self._run(self._store.record_pulls, pulls)
        except database_errors():
            for key, at in batch.items():
                self._pending[key] = max(at, self._pending.get(key, at))
            raise
        self.flushes += 1
        return len(batch)

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="modelyard-pulls")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*database_errors()):
            await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except database_errors() as exc:
                log.warning("writing last-pulled times: %s (kept for the next flush)", exc)
