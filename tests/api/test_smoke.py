"""The registry answers the spec's version check and a full push/pull round trip."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import OCI_MANIFEST, push_image


async def test_base_endpoint_announces_distribution_api(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v2/")
    assert response.status == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert await response.json() == {}


async def test_push_then_pull_by_tag_and_digest(client: TestClient[Any, Any]) -> None:
    pushed = await push_image(client, "acme/llm", "v1.0")
    by_tag = await client.get("/v2/acme/llm/manifests/v1.0", headers={"Accept": OCI_MANIFEST})
    assert by_tag.status == 200
    assert await by_tag.read() == pushed.body
    assert by_tag.headers["Docker-Content-Digest"] == pushed.digest
    assert by_tag.headers["Content-Type"] == OCI_MANIFEST
    by_digest = await client.get(f"/v2/acme/llm/manifests/{pushed.digest}")
    assert await by_digest.read() == pushed.body


async def test_base_endpoint_answers_head(client: TestClient[Any, Any]) -> None:
    response = await client.head("/v2/")
    assert response.status == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
