"""The whole registry, wired by ``create_app``, pushes and pulls on every metadata backend.

The contract suite proves the store; this proves the wiring: ``database_url`` reaches the
engine, migrations run at start, and the OCI API works end to end (PostgreSQL included).
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, push_image, sha256


async def pull(client: TestClient[Any, Any], repo: str, reference: str) -> tuple[int, bytes, str | None]:
    response = await client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    return response.status, await response.read(), response.headers.get("Docker-Content-Digest")


async def test_push_and_pull_an_image(make_client: ClientFactory, database_url: str) -> None:
    client = await make_client(database_url=database_url)
    pushed = await push_image(client, "acme/llm", "v1.0", layers=[b"weights" * 1000, b"tokenizer"])

    status, body, digest = await pull(client, "acme/llm", "v1.0")
    assert (status, body, digest) == (200, pushed.body, pushed.digest)
    status, body, _ = await pull(client, "acme/llm", pushed.digest)
    assert (status, body) == (200, pushed.body)
    for blob in [pushed.config, *pushed.layers]:
        response = await client.get(f"/v2/acme/llm/blobs/{sha256(blob)}")
        assert response.status == 200
        assert await response.read() == blob

    # Move the tag, add another, and see it in the listings.
    moved = await push_image(client, "acme/llm", "v1.0", layers=[b"weights-v2"])
    await push_image(client, "acme/llm", "Latest", layers=[b"weights-v2"])
    await push_image(client, "acme/embed", "v1", layers=[b"embed"])
    status, body, digest = await pull(client, "acme/llm", "v1.0")
    assert (status, digest) == (200, moved.digest)
    tags = await client.get("/v2/acme/llm/tags/list")
    assert (await tags.json())["tags"] == ["Latest", "v1.0"]
    catalog = await client.get("/v2/_catalog")
    assert (await catalog.json())["repositories"] == ["acme/embed", "acme/llm"]

    # Delete the first image by digest: it is gone, the moved tag is not.
    deleted = await client.delete(f"/v2/acme/llm/manifests/{pushed.digest}")
    assert deleted.status == 202
    status, _, _ = await pull(client, "acme/llm", pushed.digest)
    assert status == 404
    status, _, digest = await pull(client, "acme/llm", "v1.0")
    assert (status, digest) == (200, moved.digest)


async def test_a_restarted_app_sees_what_was_pushed(make_client: ClientFactory, database_url: str) -> None:
    """Metadata lives in the database, not in the app: a second app on the same database
    (migrating it again at start) serves the manifest the first one stored."""
    first = await make_client(database_url=database_url)
    pushed = await push_image(first, "acme/llm", "v1")
    second = await make_client(database_url=database_url)
    status, body, digest = await pull(second, "acme/llm", "v1")
    assert (status, body, digest) == (200, pushed.body, pushed.digest)
