"""Last-pulled times: a manifest GET only touches memory; the batch is written by the flush, in
one transaction, and retention then keeps what was pulled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, update

from modelyard.metadata import tables as t
from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, push_image
from tests.lifecycle.support import api, registry


async def test_pulls_are_written_in_batches(make_client: ClientFactory, db: dict[str, Any]) -> None:
    client = await make_client(**db, pull_flush_interval=0)  # flushed here by hand only
    old = await push_image(client, "acme/llm", "v1", layers=[b"old"])
    await push_image(client, "acme/llm", "v2", layers=[b"new"])
    await api(client, "PATCH", "/api/v1/repositories/acme/llm", {"is_immutable": True})
    pulls = registry(client).lifecycle.pulls
    engine = pulls._store._store.engine  # type: ignore[attr-defined]  # the store the recorder writes to
    writes: list[object] = []

    def count(conn: Any) -> None:
        if not conn.get_execution_options().get("modelyard_read"):
            writes.append(conn)

    event.listen(engine, "begin", count)
    try:
        for _ in range(25):
            response = await client.get("/v2/acme/llm/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert response.status == 200
            await client.head(f"/v2/acme/llm/manifests/{old.digest}")  # a HEAD is no pull
        assert writes == []  # 25 GETs, no write
        assert pulls.pending == 1

        def last_pulled() -> Any:
            with engine.execution_options(modelyard_read=True).connect() as conn:
                return conn.execute(
                    select(t.manifests.c.last_pulled_at).where(t.manifests.c.digest == old.digest)
                ).scalar()

        assert last_pulled() is None
        assert await pulls.flush() == 1
        assert len(writes) == 1 and pulls.pending == 0  # one transaction for the batch
    finally:
        event.remove(engine, "begin", count)
    assert last_pulled() is not None

    # Retention keeps the old version because it was pulled within the window (both were pushed
    # a month ago, as far as the database knows).
    with engine.begin() as conn:
        conn.execute(update(t.manifests).values(created_at=datetime.now(UTC) - timedelta(days=30)))
    await api(client, "PUT", "/api/v1/repositories/acme/llm/-/retention", {"keep_last": 1, "keep_days": 7})
    plan = await api(client, "POST", "/api/v1/retention/plan", {"repository": "acme/llm"})
    fate = {v["digest"]: v for v in plan["versions"]}
    assert fate[old.digest]["action"] == "keep" and fate[old.digest]["reasons"] == ["pulled within 7 days"]
    assert fate[old.digest]["last_pulled_at"] is not None


async def test_the_server_flushes_on_its_own(make_client: ClientFactory) -> None:
    client = await make_client(pull_flush_interval=0.1)
    image = await push_image(client, "acme/llm", "v1")
    await client.get(f"/v2/acme/llm/manifests/{image.digest}", headers={"Accept": OCI_MANIFEST})
    pulls = registry(client).lifecycle.pulls
    for _ in range(100):
        if pulls.flushes:
            break
        await asyncio.sleep(0.05)
    assert pulls.flushes >= 1 and pulls.pending == 0
    versions = registry(client).lifecycle.retention._store.versions("acme/llm")  # type: ignore[attr-defined]
    assert versions[0].last_pulled_at is not None
