"""The webhook API: what a subscription may say (422 naming the field, 404 for a scope that
does not exist), which events reach which subscription (scope and type filters, with event
types derived from the domain's, so types added later are filterable), and who may manage
them: admin on the subscription's scope, a subscription anyone else can't manage looking
missing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from modelyard.domain.events import EVENT_TYPES
from modelyard.domain.webhooks import type_name
from tests.api.support import ADMIN_PASSWORD, basic
from tests.conftest import ClientFactory
from tests.helpers import push_image
from tests.webhooks.support import FAST, Receiver, create_webhook, eventually

Client = TestClient[Any, Any]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"url": "ftp://example.com/hook"}, "url", 422),
        ({"url": "http://user:pw@example.com/hook"}, "url", 422),
        ({"url": "https://F0[r/yg"}, "url", 422),  # urlsplit raises on it: once a 500 (schemathesis)
        ({"url": "https://example.com:99999/hook"}, "url", 422),
        ({"url": "https://exämple.com/hook"}, "url", 422),
        ({"url": "http://example.com/hook", "event_types": ["manifest.pushd"]}, "event_types.0", 422),
        ({"url": "http://example.com/hook", "event_types": ["nothing.*"]}, "event_types.0", 422),
        ({"url": "http://example.com/hook", "event_types": ["Manifest Pushed"]}, "event_types.0", 422),
        ({"url": "http://example.com/hook", "event_types": []}, "event_types", 422),
        ({"url": "http://example.com/hook", "scope": "team:x"}, "scope", 422),
        ({"url": "http://example.com/hook", "scope": "repository:acme/nothing"}, None, 404),
        ({"url": "http://example.com/hook", "scope": "compartment:nothing"}, None, 404),
        ({"url": "http://example.com/hook", "secret": "mine"}, "secret", 422),
    ],
)
async def test_bad_subscriptions_are_refused_naming_the_field(
    client: Client, body: dict[str, Any], field: str | None, status: int
) -> None:
    response = await client.post("/api/v1/webhooks", json=body)
    assert response.status == status, await response.text()
    error = (await response.json())["errors"][0]
    if field is not None:
        assert field in [d["field"] for d in error["detail"]], error
    assert (await client.get("/api/v1/webhooks")).status == 200
    assert (await (await client.get("/api/v1/webhooks")).json())["items"] == []


async def test_event_types_are_the_domains_own(client: Client) -> None:
    response = await client.get("/api/v1/webhook-event-types")
    names = (await response.json())["items"]
    assert names == sorted(type_name(cls) for cls in EVENT_TYPES.values())
    assert {"manifest.pushed", "tag.moved", "manifest.deleted", "webhook.created"} <= set(names)


async def test_scopes_and_type_filters_pick_the_events(make_client: ClientFactory, receiver: Receiver) -> None:
    client = await make_client(**FAST)
    assert (await client.post("/api/v1/compartments", json={"name": "zeta"})).status == 201
    await push_image(client, "acme/llm", "v0")
    hooks = {
        "pushes": ("repository:acme/llm", ["manifest.pushed"]),
        "moves": ("compartment:acme", ["tag.*"]),
        "repos": ("registry", ["repository.*"]),
        "zeta": ("compartment:zeta", ["*"]),
    }
    for name, (scope, types) in hooks.items():
        await create_webhook(client, f"{receiver.url}/{name}", scope, types)
    await push_image(client, "acme/llm", "v1", config=b'{"n": 1}')
    await push_image(client, "acme/llm", "v1", config=b'{"n": 2}')  # moves v1
    await push_image(client, "acme/other", "v1")  # a new repository
    await eventually(lambda: len(receiver.received) == 4)
    await asyncio.sleep(0.3)  # and nothing more comes

    def got(name: str) -> list[str]:
        bodies = [json.loads(r.body) for r in receiver.received if r.path == f"/hook/{name}"]
        return [f"{b['type'].removeprefix('dev.modelyard.')} {b['subject']}" for b in bodies]

    assert got("pushes") == ["manifest.pushed acme/llm:v1", "manifest.pushed acme/llm:v1"]
    assert got("moves") == ["tag.moved acme/llm:v1"]
    assert got("repos") == ["repository.created repository:acme/other"]
    assert got("zeta") == []


async def test_managing_needs_admin_on_the_scope(make_client: ClientFactory) -> None:
    client = await make_client(auth_enabled=True, admin_password=ADMIN_PASSWORD)
    admin = basic("admin", ADMIN_PASSWORD)
    alice = basic("alice", "alice-Pa55word")
    assert (await client.post("/api/v1/compartments", json={"name": "acme"}, headers=admin)).status == 201
    for name in ("llm", "other"):
        body = {"compartment_id": "acme", "display_name": name}
        assert (await client.post("/api/v1/repositories", json=body, headers=admin)).status == 201
    user = {"name": "alice", "email": "alice@acme.com", "password": "alice-Pa55word"}
    assert (await client.post("/api/v1/users", json=user, headers=admin)).status == 201
    iam = "/api/v1/repositories/acme/llm/-/iam"
    policy = await (await client.get(iam, headers=admin)).json()
    policy["bindings"].append({"role": "admin", "members": ["user:alice"]})
    assert (await client.put(iam, json=policy, headers=admin)).status == 200

    url = "http://127.0.0.1:9/hook"
    registry_hook = await create_webhook(client, url, "registry", ["*"], **admin)
    mine = await create_webhook(client, url, "repository:acme/llm", ["manifest.*"], **alice)
    for scope, status in (("compartment:acme", 403), ("registry", 403), ("repository:acme/other", 404)):
        refused = await client.post("/api/v1/webhooks", json={"url": url, "scope": scope}, headers=alice)
        assert refused.status == status, (scope, await refused.text())

    listed = await (await client.get("/api/v1/webhooks", headers=alice)).json()
    assert [h["id"] for h in listed["items"]] == [mine["id"]]
    everything = await (await client.get("/api/v1/webhooks", headers=admin)).json()
    assert {h["id"] for h in everything["items"]} == {registry_hook["id"], mine["id"]}
    assert (await client.get(f"/api/v1/webhooks/{registry_hook['id']}", headers=alice)).status == 404
    assert (await client.delete(f"/api/v1/webhooks/{registry_hook['id']}", headers=alice)).status == 404
    assert (await client.get(f"/api/v1/webhooks/{registry_hook['id']}/deliveries", headers=alice)).status == 404
    assert (await client.get("/api/v1/webhooks")).status == 401
    assert (await client.get(f"/api/v1/webhooks/{mine['id']}")).status == 401
    assert (await client.get("/api/v1/webhooks/notanumber", headers=admin)).status == 404

    assert (await client.delete(f"/api/v1/webhooks/{mine['id']}", headers=alice)).status == 204
    audit = await (await client.get("/api/v1/audit", params={"actor": "user:alice"}, headers=admin)).json()
    actions = [(e["action"], e["resource"]) for e in audit["items"]]
    assert ("webhook.create", f"webhook:{mine['id']}") in actions
    assert ("webhook.delete", f"webhook:{mine['id']}") in actions
    created = next(e for e in audit["items"] if e["action"] == "webhook.create")
    assert "secret" not in json.dumps(created) and mine["secret"] not in json.dumps(created)
    assert created["detail"]["url"] == "http://127.0.0.1:9/…", "a hook's path may be its credential: not logged"
