"""Retention: the dry run lists exactly what the run deletes and frees; aliases (now, and within
their window), tag patterns and the newest versions survive; the leader runs it on a schedule."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from modelyard.app import WORKERS
from modelyard.storage.paths import sqlite_path
from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, image_manifest, push_blob, push_image, sha256
from tests.lifecycle.support import api, registry

SHARED = b"shared base layer " * 100  # in every version: never freed while one stays
CONFIG = json.dumps({"architecture": "amd64", "os": "linux"}).encode()


async def tag(client: TestClient[Any, Any], repo: str, name: str, body: bytes) -> None:
    response = await client.put(f"/v2/{repo}/manifests/{name}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 201, await response.text()


async def versions(client: TestClient[Any, Any]) -> dict[str, Any]:
    """acme/llm: v1..v6 (immutable), release-4 on v4, prod on v2, staging moved v3 -> v6, and an
    untagged manifest; each version with a unique layer and the shared one."""
    pushed = {}
    for n in range(1, 7):
        pushed[f"v{n}"] = await push_image(
            client, "acme/llm", f"v{n}", layers=[SHARED, f"weights {n} ".encode() * 50], config=CONFIG
        )
    await api(client, "PATCH", "/api/v1/repositories/acme/llm", {"immutable_tag_patterns": ["v*", "release-*"]})
    await tag(client, "acme/llm", "release-4", pushed["v4"].body)
    await tag(client, "acme/llm", "prod", pushed["v2"].body)
    await tag(client, "acme/llm", "staging", pushed["v3"].body)
    await tag(client, "acme/llm", "staging", pushed["v6"].body)
    loose = b"untagged weights " * 30
    await push_blob(client, "acme/llm", loose)
    body = image_manifest(CONFIG, [SHARED, loose])
    response = await client.put(
        f"/v2/acme/llm/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 201
    pushed["untagged"] = type(pushed["v1"])(sha256(body), body, CONFIG, [SHARED, loose])
    return pushed


async def test_the_plan_is_what_the_run_deletes_and_gc_frees(make_client: ClientFactory, db: dict[str, Any]) -> None:
    client = await make_client(**db)
    pushed = await versions(client)
    policy = {"keep_last": 1, "keep_tags": ["release-*"], "alias_window_days": 30}
    stored = await api(client, "PUT", "/api/v1/repositories/acme/llm/-/retention", policy)
    assert stored["scope"] == "repository:acme/llm" and stored["keep_last"] == 1

    plan = await api(client, "POST", "/api/v1/retention/plan", {"repository": "acme/llm"})
    fate = {v["digest"]: v for v in plan["versions"]}
    doomed = {name for name, image in pushed.items() if fate[image.digest]["action"] == "delete"}
    assert doomed == {"v1", "v5", "untagged"}
    assert "alias prod points to it" in fate[pushed["v2"].digest]["reasons"]
    assert any(r.startswith("alias staging pointed to it until") for r in fate[pushed["v3"].digest]["reasons"])
    assert "tag release-4 matches release-*" in fate[pushed["v4"].digest]["reasons"]
    assert "among the last 1 versions" in fate[pushed["v6"].digest]["reasons"]
    # Unique bytes only: each doomed version's own layer, never the shared layer or config.
    unique = [pushed[name].layers[1] for name in ("v1", "v5", "untagged")]
    assert plan["freed_bytes"] == sum(len(layer) for layer in unique)
    assert plan["delete_count"] == 3

    run = await api(client, "POST", "/api/v1/retention/run", {"repository": "acme/llm"})
    assert sorted(run["deleted"]) == sorted(f"acme/llm@{pushed[n].digest}" for n in doomed)
    assert run["skipped"] == [] and run["freed_bytes"] == plan["freed_bytes"]
    for name, image in pushed.items():
        status = (await client.get(f"/v2/acme/llm/manifests/{image.digest}", headers={"Accept": OCI_MANIFEST})).status
        assert status == (404 if name in doomed else 200), name

    # Garbage collection frees exactly the bytes the plan announced.
    report, record = registry(client).lifecycle.maintenance.collect_garbage(
        grace=timedelta(0), upload_ttl=timedelta(days=7), trigger="test"
    )
    assert report.blob_bytes == plan["freed_bytes"]
    assert sorted(report.blobs) == sorted(sha256(layer) for layer in unique)
    assert record is not None and record.freed_bytes == report.freed_bytes

    # Audited: each deletion with how=retention, the run itself, the run records.
    audit = await api(client, "GET", "/api/v1/audit?action=delete")
    retained = [e for e in audit["items"] if e["resource"].startswith("acme/llm:sha256")]
    assert len(retained) == 3
    runs = await api(client, "GET", "/api/v1/retention/runs")
    assert runs["items"][0]["removed"] == 3 and runs["items"][0]["freed_bytes"] == plan["freed_bytes"]
    gc_runs = await api(client, "GET", "/api/v1/gc/runs")
    assert gc_runs["items"][0]["freed_bytes"] == report.freed_bytes and gc_runs["items"][0]["trigger"] == "test"
    history = await api(client, "GET", "/api/v1/audit?action=retention.run")
    assert history["items"][0]["detail"] == {"trigger": "api", "deleted": 3, "freed_bytes": plan["freed_bytes"]}

    # Nothing is left to delete: a second plan is empty.
    again = await api(client, "POST", "/api/v1/retention/plan", {"repository": "acme/llm"})
    assert again["delete_count"] == 0 and again["freed_bytes"] == 0


async def test_alias_window_and_compartment_policies(make_client: ClientFactory, db: dict[str, Any]) -> None:
    client = await make_client(**db)
    pushed = await versions(client)
    # The compartment's policy applies to its repositories without one of their own.
    await api(client, "PUT", "/api/v1/compartments/acme/retention", {"keep_last": 1, "alias_window_days": 0})
    plan = await api(client, "POST", "/api/v1/retention/plan", {"compartment": "acme"})
    fate = {v["digest"]: v["action"] for v in plan["versions"]}
    assert fate[pushed["v3"].digest] == "delete"  # staging moved away, and the window is 0 days
    assert fate[pushed["v2"].digest] == "keep"  # prod still points to it: never deleted
    assert fate[pushed["v4"].digest] == "delete"  # no tag pattern in this policy
    assert plan["repositories"] == [
        {"repository": "acme/llm", "policy_scope": "compartment:acme", "delete_count": 5, "keep_count": 2}
    ]
    # A repository's own policy wins over its compartment's.
    await api(client, "PUT", "/api/v1/repositories/acme/llm/-/retention", {"keep_days": 1})
    plan = await api(client, "POST", "/api/v1/retention/plan", {"compartment": "acme"})
    assert plan["delete_count"] == 0 and plan["repositories"][0]["policy_scope"] == "repository:acme/llm"


async def test_refusals(make_client: ClientFactory) -> None:
    client = await make_client()
    await push_image(client, "acme/llm", "v1")
    await api(client, "PUT", "/api/v1/repositories/acme/llm/-/retention", {"keep_tags": ["x"]}, status=422)
    await api(client, "PUT", "/api/v1/repositories/acme/llm/-/retention", {"keep_last": 0}, status=422)
    await api(client, "PUT", "/api/v1/repositories/acme/nope/-/retention", {"keep_last": 1}, status=404)
    await api(client, "POST", "/api/v1/retention/plan", {}, status=422)
    await api(client, "POST", "/api/v1/retention/plan", {"compartment": "nope"}, status=404)
    await api(client, "GET", "/api/v1/repositories/acme/llm/-/retention", status=404)
    await api(client, "DELETE", "/api/v1/repositories/acme/llm/-/retention", status=404)


async def wait_for(condition: Any, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_scheduled_retention_runs_on_the_leader_only(
    make_client: ClientFactory, tmp_path: Any, db: dict[str, Any]
) -> None:
    shared = {"data_dir": tmp_path / "shared", "database_url": f"sqlite:///{sqlite_path(tmp_path / 'shared')}", **db}
    fast = {"retention_interval": 0.3, "gc_interval": 0, "leader_poll_interval": 0.1, "background_jobs": True}
    first = await make_client(**{**shared, **fast})
    second = await make_client(**{**shared, **fast})
    old = await push_image(first, "acme/llm", "v1", layers=[b"old"])
    await push_image(first, "acme/llm", "v2", layers=[b"new"])
    await api(first, "PATCH", "/api/v1/repositories/acme/llm", {"is_immutable": True})
    await api(first, "PUT", "/api/v1/repositories/acme/llm/-/retention", {"keep_last": 1})

    async def recorded() -> list[dict[str, Any]]:
        runs = await api(first, "GET", "/api/v1/retention/runs")
        return [r for r in runs["items"] if r["trigger"] == "schedule" and r["removed"] == 1]

    await wait_for(recorded)  # the run is recorded once its deletions committed
    scheduled = await recorded()
    assert scheduled[0]["actor"] == "system" and scheduled[0]["scope"] == "repository:acme/llm"
    response = await second.get(f"/v2/acme/llm/manifests/{old.digest}", headers={"Accept": OCI_MANIFEST})
    assert response.status == 404
    jobs = {
        name: next(j for j in c.app[WORKERS].jobs if j.name == "retention") for name, c in (("a", first), ("b", second))
    }
    leaders = [c.app[WORKERS].is_leader for c in (first, second)]
    assert sorted(leaders) == [False, True]
    follower = jobs["a"] if not leaders[0] else jobs["b"]
    assert follower.runs == 0
