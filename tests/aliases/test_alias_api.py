"""Aliases and tag history through the app (auth off), on SQLite and PostgreSQL: moves by
``/v2`` push, by the admin API and by rollback each leave one history entry with actor, how and
reason; ``?at=`` at the boundaries; rollback past a deleted manifest; optimistic concurrency;
history outliving the tag and the manifest; promotion gates over both paths."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, PushedImage, push_image

Client = TestClient[Any, Any]
REPO = "acme/llm"
BASE = f"/api/v1/repositories/{REPO}/-"
EVAL = "application/vnd.modelyard.eval.v1+json"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def app_client(request: pytest.FixtureRequest, make_client: ClientFactory) -> Client:
    if request.param == "postgresql":
        return await make_client(database_url=request.getfixturevalue("postgres_url"))
    return await make_client()


async def versions(client: Client) -> tuple[PushedImage, PushedImage, PushedImage]:
    """v1, v2, v3 in a repository whose v* tags are immutable (versions) and the rest aliases."""
    assert (await client.post("/api/v1/compartments", json={"name": "acme"})).status == 201
    created = await client.post(
        "/api/v1/repositories",
        json={"compartment_id": "acme", "display_name": "llm", "immutable_tag_patterns": ["v*"]},
    )
    assert created.status == 201, await created.text()
    pushed = [await push_image(client, REPO, f"v{n}", config=json.dumps({"n": n}).encode()) for n in (1, 2, 3)]
    return pushed[0], pushed[1], pushed[2]


async def history(client: Client, tag: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"{BASE}/tags/{tag}/history", params=params)
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def put_alias(client: Client, alias: str, **body: Any) -> Any:
    return await client.put(f"{BASE}/aliases/{alias}", json=body)


async def test_moves_by_push_api_and_rollback_are_history_with_actor_how_and_reason(app_client: Client) -> None:
    client = app_client
    v1, v2, v3 = await versions(client)
    # A plain /v2 push of a mutable tag is an alias move like any other.
    put = await client.put(f"/v2/{REPO}/manifests/prod", data=v1.body, headers={"Content-Type": OCI_MANIFEST})
    assert put.status == 201
    moved = await put_alias(client, "prod", target="v2", expected_digest=v1.digest, reason="v2 passed evals")
    assert moved.status == 200, await moved.text()
    alias = await moved.json()
    assert alias["digest"] == v2.digest and alias["versions"] == ["v2"] and alias["moved_by"] == "anonymous"
    rolled = await client.post(f"{BASE}/aliases/prod/rollback", json={"reason": "latency regression"})
    assert rolled.status == 200, await rolled.text()
    assert (await rolled.json())["digest"] == v1.digest

    entries = await history(client, "prod")
    assert [(e["how"], e["from_digest"], e["to_digest"], e["reason"]) for e in entries] == [
        ("rollback", v2.digest, v1.digest, "latency regression"),
        ("api", v1.digest, v2.digest, "v2 passed evals"),
        ("push", None, v1.digest, None),
    ]
    assert all(e["actor"] == "anonymous" and e["manifest_present"] for e in entries)

    listed = await (await client.get(f"{BASE}/aliases")).json()
    assert [(a["name"], a["digest"], a["versions"]) for a in listed["items"]] == [("prod", v1.digest, ["v1"])]
    assert await (await client.get(f"{BASE}/aliases/prod")).json() == listed["items"][0]
    assert (await client.get(f"{BASE}/aliases/canary")).status == 404
    # Events: the API move and the rollback are AliasMoved, in the audit log with how and reason.
    audit = await (await client.get("/api/v1/audit", params={"action": "alias.move"})).json()
    assert [(e["detail"]["how"], e["detail"]["to"]) for e in audit["items"]] == [
        ("rollback", v1.digest),
        ("api", v2.digest),
    ]
    del v3


async def test_at_answers_what_was_in_force_at_each_boundary(app_client: Client) -> None:
    client = app_client
    v1, v2, _ = await versions(client)
    await put_alias(client, "prod", target="v1")
    await asyncio.sleep(0.01)
    await put_alias(client, "prod", target="v2")
    await asyncio.sleep(0.01)
    assert (await client.delete(f"{BASE}/aliases/prod")).status == 204
    newest_first = await history(client, "prod")
    deleted, second, first = (datetime.fromisoformat(e["at"]) for e in newest_first)
    tiny = timedelta(microseconds=1)

    async def at(moment: datetime) -> list[str | None]:
        return [e["to_digest"] for e in await history(client, "prod", at=moment.isoformat())]

    assert await at(first - tiny) == []  # before the alias existed
    assert await at(first) == [v1.digest]  # an entry is in force from its own instant
    assert await at(second - tiny) == [v1.digest]
    assert await at(second) == [v2.digest]
    assert await at(deleted - tiny) == [v2.digest]
    assert await at(deleted) == [None]  # deleted then: the entry says so
    # "Z" works as well as +00:00, and a bad time is 422.
    zulu = (second + tiny).astimezone().strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert (await client.get(f"{BASE}/tags/prod/history", params={"at": "yesterday"})).status == 422
    assert zulu


async def test_history_pages_newest_first(app_client: Client) -> None:
    client = app_client
    await versions(client)
    for target in ("v1", "v2", "v3", "v1", "v2"):
        assert (await put_alias(client, "staging", target=target)).status == 200
    first = await (await client.get(f"{BASE}/tags/staging/history", params={"limit": "2"})).json()
    second = await (
        await client.get(f"{BASE}/tags/staging/history", params={"limit": "2", "page": first["next"]})
    ).json()
    third = await (
        await client.get(f"{BASE}/tags/staging/history", params={"limit": "2", "page": second["next"]})
    ).json()
    everything = await history(client, "staging")
    assert first["items"] + second["items"] + third["items"] == everything
    assert len(everything) == 5 and third["next"] is None
    assert (await client.get(f"{BASE}/tags/staging/history", params={"page": "x"})).status == 422


async def test_rollback_skips_deleted_manifests_and_names_the_next_candidate(app_client: Client) -> None:
    client = app_client
    assert (await client.post("/api/v1/compartments", json={"name": "acme"})).status == 201
    created = await client.post("/api/v1/repositories", json={"compartment_id": "acme", "display_name": "llm"})
    assert created.status == 201, await created.text()
    a, b, c = [await push_image(client, REPO, f"build-{n}", config=json.dumps({"n": n}).encode()) for n in (1, 2, 3)]
    for target in (a.digest, b.digest, c.digest):
        assert (await put_alias(client, "prod", target=target)).status == 200
    # The previous target's manifest is deleted (with its build tag); history keeps saying where prod was.
    assert (await client.delete(f"/v2/{REPO}/manifests/{b.digest}")).status == 202
    entries = await history(client, "prod")
    assert [(e["to_digest"], e["manifest_present"]) for e in entries] == [
        (c.digest, True),
        (b.digest, False),
        (a.digest, True),
    ]
    refused = await client.post(f"{BASE}/aliases/prod/rollback", json={"to": b.digest})
    assert refused.status == 404
    error = (await refused.json())["errors"][0]
    assert "was deleted" in error["message"] and a.digest in error["message"]
    assert error["detail"]["next_candidate"] == a.digest
    # By default the rollback skips it.
    rolled = await client.post(f"{BASE}/aliases/prod/rollback", json={})
    assert rolled.status == 200 and (await rolled.json())["digest"] == a.digest
    # The build tag's history survives its deletion too.
    assert [(e["how"], e["to_digest"]) for e in await history(client, "build-2")] == [
        ("delete", None),
        ("push", b.digest),
    ]


async def test_expected_digest_conflicts_and_concurrent_rollbacks(app_client: Client) -> None:
    client = app_client
    v1, v2, v3 = await versions(client)
    for target in ("v1", "v2", "v3"):
        await put_alias(client, "prod", target=target)
    stale = await put_alias(client, "prod", target="v1", expected_digest=v2.digest)
    assert stale.status == 409
    assert (await stale.json())["errors"][0]["detail"]["current_digest"] == v3.digest
    missing = await put_alias(client, "canary", target="v1", expected_digest=v2.digest)
    assert missing.status == 409
    # Two on-call engineers saw prod at v3 and roll it back at once: exactly one wins, the other
    # is told someone moved it first (the transaction checks where it points).
    answers = await asyncio.gather(
        *(
            client.post(f"{BASE}/aliases/prod/rollback", json={"reason": f"r{n}", "expected_digest": v3.digest})
            for n in range(2)
        )
    )
    assert sorted(r.status for r in answers) == [200, 409]
    assert [e["how"] for e in await history(client, "prod")].count("rollback") == 1
    current = await (await client.get(f"{BASE}/aliases")).json()
    assert current["items"][0]["digest"] == v2.digest
    del v1


async def test_bad_input_is_a_clear_error(app_client: Client) -> None:
    client = app_client
    await versions(client)
    assert (await put_alias(client, "prod", target="v9")).status == 404
    assert (await put_alias(client, "prod", target="sha256:" + "0" * 64)).status == 404
    assert (await put_alias(client, "prod", target="v1", expected_digest="nope")).status == 422
    assert (await put_alias(client, "prod", target="bad tag!")).status == 422
    immutable = await put_alias(client, "v7", target="v1")
    assert immutable.status == 409 and "not an alias" in (await immutable.json())["errors"][0]["message"]
    assert (await client.post(f"{BASE}/aliases/prod/rollback", json={})).status == 404
    assert (await client.get("/api/v1/repositories/acme/nothing/-/aliases")).status == 404


async def test_a_gate_can_require_staging_first_and_referrers_over_both_paths(app_client: Client) -> None:
    client = app_client
    v1, v2, _ = await versions(client)
    gate = {"alias": "prod", "required_referrer_types": [EVAL], "require_alias_first": "staging"}
    patched = await client.patch(f"/api/v1/repositories/{REPO}", json={"promotion_gates": [gate]})
    assert patched.status == 200, await patched.text()
    # An eval report on v1 (a referrer whose artifactType is the eval type).
    subject = {"mediaType": OCI_MANIFEST, "digest": v1.digest, "size": len(v1.body)}
    await push_image(client, REPO, "eval-v1", artifact_type=EVAL, subject=subject)

    not_staged = await put_alias(client, "prod", target="v1")
    assert not_staged.status == 403
    error = (await not_staged.json())["errors"][0]
    assert error["code"] == "DENIED" and "staging pointed at first" in error["message"]
    assert (await put_alias(client, "staging", target="v1")).status == 200
    assert (await put_alias(client, "staging", target="v2")).status == 200
    # staging has moved on, but it did point at v1: the gate is about the past, not the present.
    assert (await put_alias(client, "prod", target="v1")).status == 200
    # v2 was staged but has no eval report: refused over /v2 as well, naming the missing type.
    pushed = await client.put(f"/v2/{REPO}/manifests/prod", data=v2.body, headers={"Content-Type": OCI_MANIFEST})
    assert pushed.status == 403
    error = (await pushed.json())["errors"][0]
    assert error["code"] == "DENIED" and f"no referrer of type {EVAL}" in error["message"]
    assert error["detail"]["missing_referrer_types"] == [EVAL]
    # Re-pushing what prod already points at is no move: allowed whatever the rules.
    same = await client.put(f"/v2/{REPO}/manifests/prod", data=v1.body, headers={"Content-Type": OCI_MANIFEST})
    assert same.status == 201
    assert [e["to_digest"] for e in await history(client, "prod")] == [v1.digest]
