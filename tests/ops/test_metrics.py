"""``/metrics``, ``/healthz`` and ``/readyz`` through the app: counters by route template and
status, latency histograms, bytes in and out, storage gauges read from the database, failed
logins -- each parsed with prometheus-client's own parser; readiness failing with a reason
when the database goes away. (Several workers: ``test_metrics_workers.py``.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import ADMIN_PASSWORD, basic
from tests.conftest import ClientFactory
from tests.helpers import push_image, sha256
from tests.pg import PostgresServer
from tests.webhooks.support import FAST, Receiver, create_webhook, eventually

Client = TestClient[Any, Any]
MANIFEST_ROUTE = "/v2/{name}/manifests/{reference}"
BLOB_ROUTE = "/v2/{name}/blobs/{digest}"


async def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (sample name, sorted labels) -> value."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_requests_latency_bytes_and_storage_are_measured(client: Client) -> None:
    before = await scrape(client)
    pushed = await push_image(client, "acme/llm", "v1", layers=[b"x" * 5000])
    blob = await client.get(f"/v2/acme/llm/blobs/{sha256(b'x' * 5000)}")
    assert blob.status == 200 and len(await blob.read()) == 5000
    for path in ("/nope/one", "/nope/two"):
        assert (await client.get(path)).status == 404
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("modelyard_http_requests_total", method="PUT", route=MANIFEST_ROUTE, status="201") == 1
    assert delta("modelyard_http_requests_total", method="GET", route=BLOB_ROUTE, status="200") == 1
    assert delta("modelyard_http_requests_total", method="GET", route="unmatched", status="404") == 2
    assert not any("nope" in dict(labels).get("route", "") for _, labels in after), "paths never become labels"
    count = delta("modelyard_http_request_duration_seconds_count", method="PUT", route=MANIFEST_ROUTE)
    infinite = delta("modelyard_http_request_duration_seconds_bucket", method="PUT", route=MANIFEST_ROUTE, le="+Inf")
    assert count == infinite == 1
    assert delta("modelyard_http_sent_bytes_total", route=BLOB_ROUTE) >= 5000
    uploaded = delta("modelyard_http_received_bytes_total", route="/v2/{name}/blobs/uploads/{uuid}")
    uploaded += delta("modelyard_http_received_bytes_total", route="/v2/{name}/blobs/uploads/")
    assert uploaded >= 5000 + len(pushed.config)
    # Read from the database at scrape time: this registry stores exactly the config and the layer.
    assert value(after, "modelyard_storage_bytes") == 5000 + len(pushed.config)
    assert value(after, "modelyard_storage_blobs") == 2
    assert value(after, "modelyard_upload_sessions") == 0
    assert value(after, "modelyard_uploads_in_progress") == 0


async def test_failed_logins_and_webhook_deliveries_are_counted(make_client: ClientFactory, receiver: Receiver) -> None:
    client = await make_client(auth_enabled=True, admin_password=ADMIN_PASSWORD, **FAST)
    before = await scrape(client)
    refused = await client.get("/api/v1/repositories", headers=basic("admin", "wrong-password"))
    assert refused.status == 401
    admin = basic("admin", ADMIN_PASSWORD)
    receiver.script.extend([500])
    hook = await create_webhook(client, receiver.url, "registry", ["compartment.created"], **admin)
    created = await client.post("/api/v1/compartments", json={"name": "acme"}, headers=admin)
    assert created.status == 201, await created.text()
    await eventually(lambda: len(receiver.received) == 2)
    response = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin)
    await eventually(lambda: _delivered(client, hook["id"], admin))
    after = await scrape(client)
    assert response.status == 200
    assert (
        value(after, "modelyard_login_failures_total", reason="UNAUTHORIZED")
        - value(before, "modelyard_login_failures_total", reason="UNAUTHORIZED")
        == 1
    )
    for outcome in ("success", "failure"):
        grown = value(after, "modelyard_webhook_deliveries_total", outcome=outcome) - value(
            before, "modelyard_webhook_deliveries_total", outcome=outcome
        )
        assert grown == 1, outcome
    assert value(after, "modelyard_events_total", type="WebhookCreated") > value(
        before, "modelyard_events_total", type="WebhookCreated"
    )
    assert value(after, "modelyard_background_job_runs_total", job="webhooks", outcome="success") > 0


async def _delivered(client: Client, webhook_id: int, headers: dict[str, str]) -> bool:
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=headers)
    items = (await response.json())["items"]
    return bool(items) and items[0]["state"] == "succeeded"


async def test_healthz_and_readyz(client: Client) -> None:
    alive = await client.get("/healthz")
    assert alive.status == 200 and (await alive.json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json()) == {"status": "ok"}


@pytest.mark.postgres
async def test_readyz_fails_with_a_reason_when_the_database_is_gone(
    make_client: ClientFactory, postgres_server: PostgresServer
) -> None:
    name = f"readyz_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    try:
        client = await make_client(database_url=url, background_jobs=False)
        assert (await client.get("/readyz")).status == 200
        postgres_server.drop_database(name)  # WITH (FORCE): every connection of the app is cut
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "unavailable"
        assert len(body["problems"]) == 1 and body["problems"][0].startswith("database: "), body
        assert (await client.get("/healthz")).status == 200, "alive all the same: a restart would not help"
    finally:
        postgres_server.drop_database(name)


async def test_metrics_can_be_switched_off(make_client: ClientFactory) -> None:
    client = await make_client(metrics_enabled=False)
    assert (await client.get("/metrics")).status == 404


async def test_files_go_out_once_on_a_kept_alive_connection(client: Client) -> None:
    """The middleware finishes responses to time them; a file response must not be sent twice
    (aiohttp's FileResponse would, into the finished response, and drop the connection)."""
    pushed = await push_image(client, "acme/llm", "v1", layers=[b"y" * 3000])
    before = await scrape(client)
    for _ in range(3):
        blob = await client.get(f"/v2/acme/llm/blobs/{sha256(pushed.layers[0])}")
        assert blob.status == 200 and await blob.read() == pushed.layers[0]
        static = await client.get("/ui/static/app.css")
        assert static.status == 200 and len(await static.read()) > 0
    after = await scrape(client)
    grown = value(after, "modelyard_http_sent_bytes_total", route=BLOB_ROUTE) - value(
        before, "modelyard_http_sent_bytes_total", route=BLOB_ROUTE
    )
    assert grown == 3 * 3000
    static_route = {"method": "GET", "route": "/ui/static", "status": "200"}
    assert (
        value(after, "modelyard_http_requests_total", **static_route)
        - value(before, "modelyard_http_requests_total", **static_route)
        == 3
    )


async def test_scheduled_gc_runs_are_counted(make_client: ClientFactory) -> None:
    # A grace period longer than a push: with none, gc may take a pushed layer before the
    # manifest that names it arrives (as it should), and the push fails.
    client = await make_client(gc_interval=0.2, gc_grace_period=2, leader_poll_interval=0.1)
    before = await scrape(client)
    pushed = await push_image(client, "acme/llm", "v1", layers=[b"z" * 700])
    assert (await client.delete(f"/v2/acme/llm/manifests/{pushed.digest}")).status == 202

    async def collected() -> bool:
        now = await scrape(client)
        return value(now, "modelyard_gc_freed_bytes_total") - value(before, "modelyard_gc_freed_bytes_total") > 0

    await eventually(collected)
    after = await scrape(client)
    assert value(after, "modelyard_gc_runs_total", outcome="success") > value(
        before, "modelyard_gc_runs_total", outcome="success"
    )
    assert value(after, "modelyard_background_job_runs_total", job="gc", outcome="success") > 0
