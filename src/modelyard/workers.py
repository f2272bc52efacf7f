"""Background work inside the server, done once however many workers or replicas run.

Every serving process starts a :class:`BackgroundWorkers`; each tries to take the leader lock
(``metadata/leader.py``: a PostgreSQL advisory lock, or a file lock beside SQLite), and only the
holder runs jobs. A follower retries every ``leader_poll_interval`` seconds, so when the leader
stops or dies another takes over within that time. The leader checks it still holds the lock
before every run (a PostgreSQL lock dies with its connection).

Jobs are blocking callables run in a thread (or coroutine functions run on the loop), each on
its own interval and as its own task, so a long garbage collection never holds up webhook
delivery; a job that fails is logged and tried again at its next time, never taking the loop
down with it. Each run is counted in ``modelyard_background_job_runs`` (``metrics.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from modelyard import metrics
from modelyard.bootstrap import Runtime
from modelyard.metadata.errors import database_errors
from modelyard.metadata.leader import LeaderLock, leader_lock

log = logging.getLogger("modelyard.workers")


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], object]
    due: float = field(default=0.0)
    runs: int = 0
    # Awaited when the workers stop (e.g. cancel deliveries in flight, close a client).
    stop: Callable[[], Awaitable[None]] | None = None
    task: asyncio.Task[None] | None = None


def scheduled_jobs(runtime: Runtime) -> list[Job]:
    settings = runtime.settings
    jobs = []
    if settings.gc_interval > 0:

        def collect() -> object:
            # Recorded as a maintenance run with the bytes freed (GET /api/v1/gc/runs).
            try:
                report, _run = runtime.registry.lifecycle.maintenance.collect_garbage(
                    grace=timedelta(seconds=settings.gc_grace_period), upload_ttl=timedelta(seconds=settings.upload_ttl)
                )
            except Exception:  # counted, then handled (logged, retried) like any job's failure
                metrics.GC_RUNS.labels(outcome="error").inc()
                raise
            metrics.GC_RUNS.labels(outcome="success").inc()
            metrics.GC_FREED_BYTES.inc(report.freed_bytes)
            log.info(
                "scheduled gc removed %d blob(s), %d orphaned file(s), %d upload(s): %d bytes",
                len(report.blobs), len(report.orphan_files), len(report.uploads), report.freed_bytes,
            )  # fmt: skip
            return report

        jobs.append(Job("gc", settings.gc_interval, collect))
    if settings.retention_interval > 0:

        def retain() -> object:
            try:
                results = runtime.registry.lifecycle.retention.run_scheduled()
            except Exception:  # counted, then handled (logged, retried) like any job's failure
                metrics.RETENTION_RUNS.labels(outcome="error").inc()
                raise
            metrics.RETENTION_RUNS.labels(outcome="success").inc()
            for result in results:
                metrics.RETENTION_DELETED.inc(len(result.deleted))
                metrics.RETENTION_FREED_BYTES.inc(result.freed_bytes)
                log.info(
                    "scheduled retention on %s deleted %d manifest(s) (%d skipped): %d bytes to free at the next gc",
                    result.plan.scope, len(result.deleted), len(result.skipped), result.freed_bytes,
                )  # fmt: skip
            return results

        jobs.append(Job("retention", settings.retention_interval, retain))
    delivery = runtime.registry.webhook_delivery
    jobs.append(Job("webhooks", settings.webhook_poll_interval, delivery.tick, stop=delivery.close))
    replication = runtime.registry.replication_worker
    jobs.append(Job("replication", settings.replication_poll_interval, replication.tick, stop=replication.close))
    return jobs


class BackgroundWorkers:
    def __init__(self, lock: LeaderLock, jobs: list[Job], *, poll_interval: float) -> None:
        self._lock = lock
        self.jobs = jobs
        self._poll = poll_interval
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> BackgroundWorkers:
        lock = leader_lock(runtime.metadata.engine, runtime.settings.data_dir.resolve())
        return cls(lock, scheduled_jobs(runtime), poll_interval=runtime.settings.leader_poll_interval)

    def start(self) -> None:
        now = time.monotonic()
        for job in self.jobs:
            job.due = now + job.interval  # a fresh start is not a reason to run everything at once
        self._task = asyncio.create_task(self._loop(), name="modelyard-background")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for job in self.jobs:
            if job.task is not None:
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
                job.task = None
            if job.stop is not None:
                await job.stop()
        await asyncio.to_thread(self._lock.release)
        self.is_leader = False

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except database_errors() as exc:  # e.g. the database is away for a moment
                log.warning("background work: %s", exc)
                await self._abandon()
            await asyncio.sleep(self._sleep_time())

    async def _abandon(self) -> None:
        """Leadership is lost (or cannot be known): cancel the jobs running, as the new leader
        starts its own -- two replication passes over the same tasks would race each other's
        copies and deletes. (A job in a thread finishes its call; its task is cancelled.)"""
        self.is_leader = False
        for job in self.jobs:
            if job.task is not None and not job.task.done():
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
                log.info("background job %s cancelled: this process no longer leads", job.name)
            job.task = None
            job.due = min(job.due, time.monotonic() + job.interval)  # a cancelled run left it at inf

    async def _tick(self) -> None:
        held = await asyncio.to_thread(self._lock.still_held if self.is_leader else self._lock.try_acquire)
        if held != self.is_leader:
            log.info("this process %s background work", "leads" if held else "no longer leads")
        if not held:
            if self.is_leader:
                await self._abandon()
            return
        self.is_leader = held
        for job in self.jobs:
            if time.monotonic() >= job.due and (job.task is None or job.task.done()):
                job.due = float("inf")  # until this run ends
                job.task = asyncio.create_task(self._run(job), name=f"modelyard-job-{job.name}")

    async def _run(self, job: Job) -> None:
        start = time.monotonic()
        outcome = "success"
        try:
            if inspect.iscoroutinefunction(job.run):
                await job.run()
            else:
                await asyncio.to_thread(job.run)
        except Exception:  # a job's failure is logged and retried at its next time, whatever it was
            log.exception("background job %s failed", job.name)
            outcome = "error"
        metrics.JOB_RUNS.labels(job=job.name, outcome=outcome).inc()
        metrics.JOB_SECONDS.labels(job=job.name).observe(time.monotonic() - start)
        job.runs += 1
        job.due = time.monotonic() + job.interval

    def _sleep_time(self) -> float:
        if not self.is_leader or not self.jobs:
            return self._poll
        until_next = min(job.due for job in self.jobs) - time.monotonic()  # inf while all run
        return max(0.05, min(self._poll, until_next))
