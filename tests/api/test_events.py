"""Events through the app: what a push, a tag move, a delete and a login leave in the outbox,
read through ``GET /api/v1/audit`` -- and what a refused change leaves (nothing). On SQLite and
PostgreSQL (the outbox is written in the change's transaction, ``domain/events.py``)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, push_blob, push_image

Client = TestClient[Any, Any]
REPO = "acme/llm"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def app_client(request: pytest.FixtureRequest, make_client: ClientFactory) -> Client:
    if request.param == "postgresql":
        return await make_client(database_url=request.getfixturevalue("postgres_url"))
    return await make_client()


async def audit(client: Client, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"limit": "1000", **params})
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return list(reversed(items))  # oldest first


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["action"], e["resource"]) for e in events]


async def test_push_tag_move_and_deletes_are_recorded_once_each(app_client: Client) -> None:
    client = app_client
    first = await push_image(client, REPO, "prod", config=b'{"n": 1}')
    second = await push_image(client, REPO, "prod", config=b'{"n": 2}')
    events = await audit(client)
    assert summary(events) == [
        ("repository.create", f"repository:{REPO}"),
        ("push", f"{REPO}:prod"),
        ("push", f"{REPO}:prod"),
        ("tag.move", f"{REPO}:prod"),
    ]
    assert events[0]["detail"] == {"on_push": True}
    assert [e["detail"]["digest"] for e in events if e["action"] == "push"] == [first.digest, second.digest]
    assert events[3]["detail"] == {"from": first.digest, "to": second.digest}
    assert all(e["actor"] == "anonymous" and e["outcome"] == "success" and e["client_ip"] for e in events)

    # Pushing the same content under the same tag again is a push, not a move.
    again = await client.put(f"/v2/{REPO}/manifests/prod", data=second.body, headers={"Content-Type": OCI_MANIFEST})
    assert again.status == 201
    assert summary(await audit(client))[-1] == ("push", f"{REPO}:prod")

    assert (await client.delete(f"/v2/{REPO}/manifests/prod")).status == 202
    assert (await client.delete(f"/v2/{REPO}/manifests/{first.digest}")).status == 202
    layer = await push_blob(client, REPO, b"a layer of nothing")
    assert (await client.delete(f"/v2/{REPO}/blobs/{layer}")).status == 202
    assert summary(await audit(client))[-3:] == [
        ("delete", f"{REPO}:prod"),
        ("delete", f"{REPO}:{first.digest}"),
        ("delete.blob", f"{REPO}@{layer}"),
    ]
    # A delete that finds nothing records nothing.
    before = len(await audit(client))
    assert (await client.delete(f"/v2/{REPO}/manifests/prod")).status == 404
    assert len(await audit(client)) == before


async def test_a_refused_push_records_nothing(app_client: Client) -> None:
    client = app_client
    await push_image(client, REPO, "v1", config=b'{"n": 1}')
    candidate = await push_image(client, REPO, "v2", config=b'{"n": 2}')
    patched = await client.patch(f"/api/v1/repositories/{REPO}", json={"is_immutable": True})
    assert patched.status == 200, await patched.text()
    before = await audit(client)
    assert summary(before)[-1] == ("repository.update", f"repository:{REPO}")
    assert before[-1]["detail"] == {"fields": ["is_immutable"]}

    # An immutable tag may not move: the put is refused inside its transaction.
    moved = await client.put(f"/v2/{REPO}/manifests/v1", data=candidate.body, headers={"Content-Type": OCI_MANIFEST})
    assert moved.status == 409 and "TAG_IMMUTABLE" in await moved.text()
    # A manifest whose blobs are not in the repository is refused.
    other = await push_image(client, "acme/elsewhere", "v1", config=b'{"n": 3}')
    unknown = await client.put(f"/v2/{REPO}/manifests/v3", data=other.body, headers={"Content-Type": OCI_MANIFEST})
    assert unknown.status == 400 and "MANIFEST_BLOB_UNKNOWN" in await unknown.text()
    after = await audit(client)
    assert [e for e in after if e["resource"].startswith(f"{REPO}:")] == [
        e for e in before if e["resource"].startswith(f"{REPO}:")
    ]
    assert summary(after)[len(before) :] == [
        ("repository.create", "repository:acme/elsewhere"),
        ("push", "acme/elsewhere:v1"),
    ]


async def test_admin_changes_are_recorded_with_what_changed(app_client: Client) -> None:
    client = app_client
    assert (await client.post("/api/v1/compartments", json={"name": "acme"})).status == 201
    created = await client.post("/api/v1/repositories", json={"compartment_id": "acme", "display_name": "llm"})
    assert created.status == 201
    policy = await (await client.get(f"/api/v1/repositories/{REPO}/-/iam")).json()
    policy["bindings"] = [{"role": "reader", "members": ["allUsers"]}]
    assert (await client.put(f"/api/v1/repositories/{REPO}/-/iam", json=policy)).status == 200
    assert (await client.delete(f"/api/v1/repositories/{REPO}")).status == 204
    assert (await client.delete("/api/v1/compartments/acme")).status == 204
    events = await audit(client)
    assert summary(events) == [
        ("compartment.create", "compartment:acme"),
        ("repository.create", f"repository:{REPO}"),
        ("iam.set", f"repository:{REPO}"),
        ("repository.delete", f"repository:{REPO}"),
        ("compartment.delete", "compartment:acme"),
    ]
    assert events[2]["detail"] == {"bindings": [{"role": "reader", "members": ["allUsers"]}]}
    # A refused change records nothing.
    assert (await client.delete("/api/v1/compartments/acme")).status == 404
    assert len(await audit(client)) == len(events)


async def test_logins_and_tokens_are_recorded_without_secrets(make_client: ClientFactory) -> None:
    password = "Admin-Password-42"
    client = await make_client(auth_enabled=True, admin_password=password)
    basic = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
    wrong = "Basic " + base64.b64encode(b"admin:not-the-password").decode()
    assert (await client.get("/auth/token", headers={"Authorization": wrong})).status == 401
    token = await client.get(
        "/auth/token", params={"scope": f"repository:{REPO}:pull,push"}, headers={"Authorization": basic}
    )
    assert token.status == 200
    response = await client.get("/api/v1/audit", params={"limit": "100"}, headers={"Authorization": basic})
    assert response.status == 200, await response.text()
    events = list(reversed((await response.json())["items"]))
    seen = [(e["actor"], e["action"], e["outcome"]) for e in events]
    assert seen == [
        ("system", "user.create", "success"),
        ("system", "iam.set", "success"),
        ("admin", "login", "failure"),
        ("user:admin", "login", "success"),
        ("user:admin", "token.issue", "success"),
    ]
    assert events[2]["detail"] == {"reason": "UNAUTHORIZED"}
    assert events[4]["detail"] == {"access": [f"repository:{REPO}:pull,push,overwrite"]}
    assert password not in str(events) and "not-the-password" not in str(events)
