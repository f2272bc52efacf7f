"""A process that loses the leader lock stops the jobs it is running (review M4): otherwise its
replication pass goes on beside the new leader's, both working the same tasks.

The lock is the real file lock, wrapped so the test can say when this process lost it (as a
PostgreSQL advisory lock is lost with its connection); the jobs are real coroutines."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelyard.metadata.leader import FileLeaderLock
from modelyard.workers import BackgroundWorkers, Job


class LosableLock:
    def __init__(self, path: Path) -> None:
        self._lock = FileLeaderLock(path)
        self.lost = False

    def try_acquire(self) -> bool:
        return not self.lost and self._lock.try_acquire()

    def still_held(self) -> bool:
        return not self.lost and self._lock.still_held()

    def release(self) -> None:
        self._lock.release()


async def test_a_lost_leadership_cancels_the_running_jobs(tmp_path: Path) -> None:
    lock = LosableLock(tmp_path / "leader.lock")
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long_pass() -> None:  # a full pass of hours
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = Job("replication", 0.01, long_pass)
    workers = BackgroundWorkers(lock, [job], poll_interval=0.05)
    workers.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        assert workers.is_leader
        lock.lost = True
        await asyncio.wait_for(cancelled.wait(), 10)
        assert not workers.is_leader and job.task is None
        started.clear()
        lock.lost = False  # leads again: the job runs again (it is not left waiting for ever)
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await workers.stop()
