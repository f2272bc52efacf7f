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

    def __init__(self, max_workers: int = 32) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="modelyard-io")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Start ``fn`` in a thread now and return its future (to overlap with other work)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
