"""Running blocking work (disk writes, hashing, database writes) off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class BlockingRunner:
    """A thread pool that services hand blocking calls to.

    ``hashlib`` and ``os.writev`` release the GIL on large buffers, so a batch of upload bytes
    hashed and written in a thread leaves the event loop free to answer other requests.
    """

    def __init__(self, max_workers: int = 32, max_transfers: int = 64) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="modelyard-io")
        self._transfers = ThreadPoolExecutor(max_workers=max_transfers, thread_name_prefix="modelyard-body")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.submit(fn, *args, **kwargs)

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Start ``fn`` in a thread now and return its future (to overlap with other work)."""
        return asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def submit_transfer(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Start ``fn`` on a pool of its own: work that lasts as long as a client's transfer (an
        upload body read in a thread) must never hold the threads short metadata and disk
        calls need, however many slow clients there are."""
        return asyncio.get_running_loop().run_in_executor(self._transfers, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._transfers.shutdown(wait=True, cancel_futures=True)
        self._executor.shutdown(wait=True, cancel_futures=True)


class Reader:
    """Runs a metadata read where it costs least.

    SQLite reads are local and take tens of microseconds: a hop to the thread pool would cost
    more than the read, so they run inline on the event loop (the manifest-GET fast path). A
    PostgreSQL read is a network round trip that can wait on a busy server or a lock; run inline
    it would stall every other request of the worker, so it runs on the thread pool. Handlers
    await ``registry.read(fn, ...)`` for every synchronous service call that touches metadata
    and group the reads of one step into one call, so PostgreSQL pays one hop, not one per query.
    """

    def __init__(self, runner: BlockingRunner, *, inline: bool) -> None:
        self._runner = runner
        self.inline = inline

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.inline:
            return fn(*args, **kwargs)
        return await self._runner.run(fn, *args, **kwargs)
