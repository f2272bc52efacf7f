"""Liveness and readiness, and the registry-wide numbers ``/metrics`` reports.

Ready means both stores answer: a database round trip, and the blob store taking and
dropping an upload (a real write where blobs are written, whatever the backend). The checks
run in threads with a deadline, so a hung NFS mount or database makes ``/readyz`` say so
instead of hanging with it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Protocol

from modelyard.domain.operations import StorageStats
from modelyard.services.runner import BlockingRunner
from modelyard.storage.base import BlobStore

CHECK_TIMEOUT = 5.0


class Stats(Protocol):
    def ping(self) -> None: ...
    def storage(self) -> StorageStats: ...


class HealthService:
    def __init__(self, stats: Stats, store: BlobStore, runner: BlockingRunner) -> None:
        self._stats = stats
        self._store = store
        self._run = runner.run

    def _probe_storage(self) -> None:
        probe = f"readyz-{uuid.uuid4()}"
        self._store.start_upload(probe)
        self._store.abort_upload(probe)

    async def _check(self, name: str, check_timeout: float, probe: Callable[[], None]) -> str | None:
        try:
            await asyncio.wait_for(self._run(probe), check_timeout)
        except TimeoutError:
            return f"{name}: no answer within {check_timeout:g} s"
        except Exception as exc:  # any failure of a backend means not ready; its text is the reason
            return f"{name}: {type(exc).__name__}: {exc}"[:300]
        return None

    async def problems(self, check_timeout: float = CHECK_TIMEOUT) -> list[str]:
        """Why the registry is not ready (empty: ready)."""
        results = await asyncio.gather(
            self._check("database", check_timeout, self._stats.ping),
            self._check("storage", check_timeout, self._probe_storage),
        )
        return [r for r in results if r is not None]

    def storage(self) -> StorageStats:
        return self._stats.storage()
