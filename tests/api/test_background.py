"""Background work runs once however many workers or replicas serve: one leads, the others wait,
and when the leader stops another takes over. On SQLite (a file lock beside the database) and
on PostgreSQL (an advisory lock that replicas on other machines share)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from modelyard.app import WORKERS
from modelyard.storage.paths import sqlite_path
from tests.conftest import ClientFactory
from tests.helpers import push_blob

FAST = {"gc_interval": 0.2, "gc_grace_period": 0, "leader_poll_interval": 0.1}


async def wait_for(condition: Any, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def leaders(*clients: TestClient[Any, Any]) -> list[bool]:
    return [client.app[WORKERS].is_leader for client in clients]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings two workers share: one data directory and one database."""
    data_dir = tmp_path / "shared"
    if request.param == "sqlite":
        return {"data_dir": data_dir, "database_url": f"sqlite:///{sqlite_path(data_dir)}"}
    return {"data_dir": data_dir, "database_url": request.getfixturevalue("postgres_url")}


async def test_one_worker_leads_and_another_takes_over(
    make_client: ClientFactory, shared_database: dict[str, Any]
) -> None:
    first = await make_client(**shared_database, **FAST)
    second = await make_client(**shared_database, **FAST)
    await wait_for(lambda: any(leaders(first, second)))
    await asyncio.sleep(0.5)  # several polls: the follower stays a follower
    assert sorted(leaders(first, second)) == [False, True]

    leader, follower = (first, second) if first.app[WORKERS].is_leader else (second, first)
    stray = await push_blob(follower, "acme/llm", b"nothing refers to me")
    before = leader.app[WORKERS].jobs[0].runs
    await wait_for(lambda: leader.app[WORKERS].jobs[0].runs >= before + 2)
    assert (await follower.head(f"/v2/acme/llm/blobs/{stray}")).status == 404  # collected by the leader
    assert follower.app[WORKERS].jobs[0].runs == 0

    await leader.close()  # the leader stops (on PostgreSQL its session, and so its lock, ends)
    await wait_for(lambda: follower.app[WORKERS].is_leader)
    runs = follower.app[WORKERS].jobs[0].runs
    await wait_for(lambda: follower.app[WORKERS].jobs[0].runs > runs)


async def test_no_scheduled_work_when_switched_off(make_client: ClientFactory) -> None:
    client = await make_client(background_jobs=False, **FAST)
    stray = await push_blob(client, "acme/llm", b"kept: nothing runs gc")
    await asyncio.sleep(0.5)
    assert not client.app[WORKERS].is_leader
    assert (await client.head(f"/v2/acme/llm/blobs/{stray}")).status == 200


@pytest.mark.postgres
def test_release_waits_for_a_check_still_running_in_a_thread(postgres_url: str) -> None:
    """Shutdown cancels the loop, not the thread it left checking the lock: release must wait
    for that check instead of closing the connection under it (CI once saw the check's
    failure path find the connection already gone: AttributeError at shutdown)."""
    from modelyard.metadata.leader import PostgresLeaderLock
    from modelyard.metadata.sql import create_metadata_engine

    engine = create_metadata_engine(postgres_url)
    lock = PostgresLeaderLock(engine)
    assert lock.try_acquire()
    real, checking = lock._conn, threading.Event()

    class SlowCheck:
        def execute(self, query: str, *args: Any) -> Any:
            if query == "SELECT 1":
                checking.set()
                time.sleep(0.3)
            return real.execute(query, *args)

        def close(self) -> None:
            real.close()

    lock._conn = SlowCheck()
    results: list[bool] = []
    checker = threading.Thread(target=lambda: results.append(lock.still_held()))
    checker.start()
    assert checking.wait(5)
    lock.release()  # while the check sleeps
    checker.join(5)
    assert results == [True]
    assert real.closed and lock._conn is None
    assert PostgresLeaderLock(engine).try_acquire()  # and the lock is free for the next leader
    engine.dispose()
