"""Metadata reads and the event loop (issue: foundation, item 8).

On SQLite a read takes microseconds and runs inline on the event loop (a thread hop would cost
more than the read). On PostgreSQL a read is a network round trip that can wait -- on a slow
server, on a lock -- and must not stall every other request of the worker: it runs in the
thread pool. The proof takes an exclusive lock on the ``tags`` table from another connection,
so that a manifest GET by tag waits inside its read; meanwhile the same worker must still
answer other requests. With reads on the loop, the second request could only be answered after
the lock was released.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from modelyard.api.context import REGISTRY
from modelyard.services.runner import BlockingRunner, Reader
from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, push_image

LOCK_HELD_S = 3.0


def registry_reads_inline(client: TestClient[Any, Any]) -> bool:
    return client.server.app[REGISTRY].read.inline


async def test_sqlite_reads_run_inline(make_client: ClientFactory) -> None:
    client = await make_client()
    assert registry_reads_inline(client)


async def test_the_reader_runs_inline_or_on_the_pool() -> None:
    runner = BlockingRunner(max_workers=1)
    try:
        here = threading.get_ident()
        assert await Reader(runner, inline=True)(threading.get_ident) == here
        assert await Reader(runner, inline=False)(threading.get_ident) != here
    finally:
        runner.shutdown()


@pytest.mark.postgres
async def test_a_blocked_postgresql_read_does_not_stall_the_worker(
    make_client: ClientFactory, postgres_url: str
) -> None:
    client = await make_client(database_url=postgres_url)
    assert not registry_reads_inline(client)
    pushed = await push_image(client, "acme/llm", "v1")

    released = threading.Event()
    locker = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        locker.execute("LOCK TABLE tags IN ACCESS EXCLUSIVE MODE")

        def release() -> None:
            released.set()
            locker.rollback()

        timer = threading.Timer(LOCK_HELD_S, release)
        timer.start()
        waiting = asyncio.ensure_future(client.get("/v2/acme/llm/manifests/v1", headers={"Accept": OCI_MANIFEST}))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the manifest GET should be waiting on the lock"
        ping = await client.get("/v2/")
        pinged_while_locked = not released.is_set()
        assert ping.status == 200
        assert pinged_while_locked, "the worker answered nothing while one read waited on PostgreSQL"
        response = await waiting
        assert response.status == 200
        assert response.headers["Docker-Content-Digest"] == pushed.digest
        timer.join()
    finally:
        locker.close()
