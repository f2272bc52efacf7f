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
import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from modelyard.api.context import REGISTRY
from modelyard.services.runner import BlockingRunner, Reader
from tests.auth.support import ADMIN_PASSWORD
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


@contextmanager
def table_locked(postgres_url: str, table: str) -> Iterator[threading.Event]:
    """An exclusive lock on ``table`` from another connection for LOCK_HELD_S seconds; the event
    is set when it is released."""
    released = threading.Event()
    locker = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

        def release() -> None:
            released.set()
            locker.rollback()

        timer = threading.Timer(LOCK_HELD_S, release)
        timer.start()
        try:
            yield released
        finally:
            timer.join()
    finally:
        locker.close()


async def answered_while_waiting(
    client: TestClient[Any, Any], postgres_url: str, table: str, path: str, headers: dict[str, str] | None = None
) -> Any:
    """GET ``path`` while ``table`` is locked: it must wait, and the worker must meanwhile answer
    another request. Returns the waiting request's response."""
    with table_locked(postgres_url, table) as released:
        waiting = asyncio.ensure_future(client.get(path, headers=headers))
        await asyncio.sleep(0.3)
        assert not waiting.done(), f"GET {path} should be waiting on the lock of {table}"
        ping = await client.get("/v2/")
        pinged_while_locked = not released.is_set()
        assert ping.status in (200, 401)  # answered (401: auth on, no credentials)
        assert pinged_while_locked, f"the worker answered nothing while GET {path} waited on PostgreSQL"
        return await waiting


@pytest.mark.postgres
async def test_a_blocked_postgresql_read_does_not_stall_the_worker(
    make_client: ClientFactory, postgres_url: str
) -> None:
    client = await make_client(database_url=postgres_url)
    assert not registry_reads_inline(client)
    pushed = await push_image(client, "acme/llm", "v1")
    response = await answered_while_waiting(
        client, postgres_url, "tags", "/v2/acme/llm/manifests/v1", {"Accept": OCI_MANIFEST}
    )
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == pushed.digest


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("table", "path", "shows"),
    [
        ("repositories", "/api/v1/repositories/acme/llm", '"display_name":"llm"'),
        ("repositories", "/api/v1/repositories", '"display_name":"llm"'),
        ("tags", "/api/v1/repositories/acme/llm/-/versions", '"tag":"v1"'),
        ("compartments", "/api/v1/compartments/acme", '"name":"acme"'),
        ("audit_events", "/api/v1/audit", '"items"'),
        ("repositories", "/ui/r/acme/llm", "acme/llm"),
        ("repositories", "/ui/", "acme/llm"),
    ],
)
async def test_admin_api_and_web_reads_wait_off_the_loop(
    make_client: ClientFactory, postgres_url: str, table: str, path: str, shows: str
) -> None:
    client = await make_client(database_url=postgres_url)
    await push_image(client, "acme/llm", "v1")
    response = await answered_while_waiting(client, postgres_url, table, path)
    assert response.status == 200
    assert shows in await response.text()


@pytest.mark.postgres
async def test_permission_checks_wait_off_the_loop(make_client: ClientFactory, postgres_url: str) -> None:
    """With auth on, every admin request first reads the caller's IAM bindings: that read too."""
    client = await make_client(database_url=postgres_url, auth_enabled=True, admin_password=ADMIN_PASSWORD)
    basic = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    response = await answered_while_waiting(
        client, postgres_url, "iam_policies", "/api/v1/users", {"Authorization": basic}
    )
    assert response.status == 200, await response.text()
