"""Webhook delivery end to end: a push through /v2 reaches a real HTTP receiver as a signed
CloudEvent (checked with the ``standardwebhooks`` and ``cloudevents`` libraries, not our code),
retried after 500s, logged attempt by attempt, redelivered on request; a hanging receiver
never holds up a push. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks import Webhook

from modelyard.app import WORKERS
from tests.conftest import ClientFactory
from tests.helpers import push_image
from tests.webhooks.support import FAST, HANG, Receiver, create_webhook, deliveries, delivery, eventually

Client = TestClient[Any, Any]
REPO = "acme/llm"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def app_client(request: pytest.FixtureRequest, make_client: ClientFactory) -> Client:
    if request.param == "postgresql":
        return await make_client(database_url=request.getfixturevalue("postgres_url"), **FAST)
    return await make_client(**FAST)


async def test_a_push_arrives_signed_as_a_cloudevent_and_is_logged(app_client: Client, receiver: Receiver) -> None:
    client = app_client
    await push_image(client, REPO, "v0")  # the repository exists, from before the subscription
    hook = await create_webhook(client, receiver.url, f"repository:{REPO}", ["manifest.pushed"])
    assert hook["secret"].startswith("whsec_") and hook["scope"] == f"repository:{REPO}"
    shown = await client.get(f"/api/v1/webhooks/{hook['id']}")
    assert "secret" not in await shown.json(), "the secret is shown once, at creation"

    pushed = await push_image(client, REPO, "v1")
    await eventually(lambda: len(receiver.received) == 1)
    got = receiver.received[0]

    payload = Webhook(hook["secret"]).verify(got.body, got.headers)  # raises unless the signature is right
    assert payload["type"] == "dev.modelyard.manifest.pushed"
    event = from_http_event(HTTPMessage(got.headers, got.body))
    assert got.headers["Content-Type"].startswith("application/cloudevents+json")
    assert event.get_attributes()["specversion"] == "1.0"
    assert event.get_attributes()["subject"] == f"{REPO}:v1"
    data = event.get_data()
    assert isinstance(data, dict)
    assert (data["repository"], data["tag"], data["digest"], data["actor"]) == (REPO, "v1", pushed.digest, "anonymous")
    assert data["model"]["packaging"] == "image"  # the model index's facts ride along

    with pytest.raises(Exception, match="signature"):  # a body changed in transit fails verification
        Webhook(hook["secret"]).verify(got.body.replace(b"v1", b"v2"), got.headers)

    await eventually(lambda: _state(client, hook["id"], "succeeded"))
    (item,) = await deliveries(client, hook["id"])
    assert (item["event_type"], item["resource"], item["attempts"]) == ("manifest.pushed", f"{REPO}:v1", 1)
    detail = await delivery(client, hook["id"], item["id"])
    ((attempt),) = detail["log"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0
    assert len(receiver.received) == 1, "v0 was pushed before the subscription existed"


async def _state(client: Client, webhook_id: int, state: str, count: int = 1) -> bool:
    items = await deliveries(client, webhook_id)
    return len(items) == count and all(item["state"] == state for item in items)


async def test_500s_are_retried_with_back_off_until_success_then_redelivered(
    app_client: Client, receiver: Receiver
) -> None:
    client = app_client
    receiver.script.extend([500, 503, 200])
    hook = await create_webhook(client, receiver.url, "registry", ["manifest.*"])
    await push_image(client, REPO, "v1")
    await eventually(lambda: _state(client, hook["id"], "succeeded"))
    assert len(receiver.received) == 3
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(ids) == 1, "every try of a delivery carries the same webhook-id"
    bodies = {json.loads(r.body)["id"] for r in receiver.received}
    assert len(bodies) == 1, "and the same CloudEvent id"
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1, f"back-off doubles between tries: {gaps}"
    for received in receiver.received:
        Webhook(hook["secret"]).verify(received.body, received.headers)

    (item,) = await deliveries(client, hook["id"])
    detail = await delivery(client, hook["id"], item["id"])
    assert [(a["attempt"], a["status_code"]) for a in detail["log"]] == [(1, 500), (2, 503), (3, 200)]
    assert detail["log"][0]["error"] == "endpoint answered 500" and detail["log"][2]["error"] is None
    assert (detail["state"], detail["attempts"], detail["last_status_code"]) == ("succeeded", 3, 200)

    redo = await client.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{item['id']}/redeliver", json={"tries": 2})
    assert redo.status == 202, await redo.text()
    assert ((await redo.json())["state"], (await redo.json())["tries_left"]) == ("pending", 2)
    await eventually(lambda: len(receiver.received) == 4)
    again = receiver.received[3]
    assert again.headers["webhook-id"] in ids and json.loads(again.body)["id"] in bodies
    Webhook(hook["secret"]).verify(again.body, again.headers)
    await eventually(lambda: _attempts(client, hook["id"], item["id"], 4))
    audit = await client.get("/api/v1/audit", params={"action": "webhook.redeliver"})
    assert [e["resource"] for e in (await audit.json())["items"]] == [f"webhook:{hook['id']}/deliveries/{item['id']}"]


async def _attempts(client: Client, webhook_id: int, delivery_id: int, count: int) -> bool:
    detail = await delivery(client, webhook_id, delivery_id)
    return len(detail["log"]) == count and detail["state"] == "succeeded"


async def test_a_failing_endpoint_runs_out_of_tries(make_client: ClientFactory, receiver: Receiver) -> None:
    client = await make_client(**FAST, webhook_max_attempts=3)
    receiver.default = 500
    hook = await create_webhook(client, receiver.url, "registry", ["manifest.pushed"])
    await push_image(client, REPO, "v1")
    await eventually(lambda: _state(client, hook["id"], "failed"))
    (item,) = await deliveries(client, hook["id"])
    assert (item["attempts"], item["tries_left"], item["next_attempt_at"]) == (3, 0, None)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 3, "no try after the last"


async def test_a_hanging_endpoint_never_holds_up_a_push(make_client: ClientFactory, receiver: Receiver) -> None:
    client = await make_client(**FAST, webhook_timeout=120)
    receiver.default = HANG
    await create_webhook(client, receiver.url, "registry", ["manifest.pushed"])
    await push_image(client, REPO, "v1")
    await eventually(lambda: receiver.hanging == 1)  # the delivery is stuck in the receiver
    for tag in ("v2", "v3", "v4"):
        await asyncio.wait_for(push_image(client, REPO, tag), timeout=15)
    assert receiver.hanging >= 1, "the pushes completed while the receiver still held a delivery"
    await eventually(lambda: receiver.hanging == 4)  # and each push's delivery went out too (concurrently)


async def test_a_refused_connection_is_logged_as_an_error(make_client: ClientFactory) -> None:
    client = await make_client(**FAST, webhook_max_attempts=2)
    hook = await create_webhook(client, "http://127.0.0.1:9/hook", "registry", ["manifest.pushed"])  # discard port
    await push_image(client, REPO, "v1")
    await eventually(lambda: _state(client, hook["id"], "failed"))
    (item,) = await deliveries(client, hook["id"])
    detail = await delivery(client, hook["id"], item["id"])
    assert [a["status_code"] for a in detail["log"]] == [None, None]
    assert all("Connect" in a["error"] for a in detail["log"]), detail["log"]


async def test_a_webhook_to_a_link_local_address_is_never_sent(make_client: ClientFactory) -> None:
    """Whoever manages webhooks of a repository must not make the registry post to the cloud
    metadata service: the attempt is refused before it leaves, and logged."""
    client = await make_client(**FAST, webhook_max_attempts=1)
    hook = await create_webhook(client, "http://169.254.169.254/latest", "registry", ["manifest.pushed"])
    await push_image(client, REPO, "v1")
    await eventually(lambda: _state(client, hook["id"], "failed"))
    (item,) = await deliveries(client, hook["id"])
    detail = await delivery(client, hook["id"], item["id"])
    assert [a["status_code"] for a in detail["log"]] == [None]
    assert "link-local address 169.254.169.254" in detail["log"][0]["error"], detail["log"]


@pytest.mark.postgres
async def test_two_servers_on_one_database_deliver_each_event_once(
    make_client: ClientFactory, receiver: Receiver, postgres_url: str
) -> None:
    """Replicas share the outbox: only the leader (a PostgreSQL advisory lock) delivers, once.
    They share ``secret_key`` too, as the README says replicas must."""
    shared = {"database_url": postgres_url, "secret_key": base64.b64encode(b"s" * 32).decode(), **FAST}
    first, second = await make_client(**shared), await make_client(**shared)
    hook = await create_webhook(first, receiver.url, "registry", ["manifest.pushed"])
    for index, client in enumerate([first, second, first, second]):
        await push_image(client, REPO, f"v{index}")
    await eventually(lambda: len(receiver.received) == 4)
    await asyncio.sleep(0.5)  # and no second copy follows
    subjects = sorted(json.loads(r.body)["subject"] for r in receiver.received)
    assert subjects == [f"{REPO}:v{i}" for i in range(4)]
    for received in receiver.received:
        Webhook(hook["secret"]).verify(received.body, received.headers)
    leaders = [client.app[WORKERS].is_leader for client in (first, second)]
    assert sorted(leaders) == [False, True]
