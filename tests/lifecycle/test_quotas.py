"""Quotas: refused with DENIED before the body is read when the size is declared, at commit when
it is not, at manifest put when the repository is over; usage counts a shared blob once."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import ClientFactory
from tests.helpers import error_code, push_blob, push_image, sha256
from tests.lifecycle.support import api

GIB = 1024**3


async def raw_request(client: TestClient[Any, Any], head: str) -> tuple[int, bytes]:
    """Send only a request's head (no body at all) and read the answer: it can only come if the
    server answered without reading the body it was promised."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head.encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    rest = await asyncio.wait_for(reader.read(65536), timeout=10)
    writer.close()
    return int(status_line.split()[1]), rest


async def test_a_declared_size_over_quota_is_refused_before_the_body(
    make_client: ClientFactory, db: dict[str, Any]
) -> None:
    client = await make_client(**db)
    await push_image(client, "acme/llm", "v1", layers=[b"x" * 1000])
    quota = await api(client, "PUT", "/api/v1/repositories/acme/llm/-/quota", {"limit_bytes": 10_000})
    assert quota["limit_bytes"] == 10_000 and 1000 < quota["usage_bytes"] < 10_000

    digest = sha256(b"whatever")
    head = (
        f"POST /v2/acme/llm/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {10 * GIB}\r\n\r\n"
    )
    status, body = await raw_request(client, head)
    assert status == 403, body
    assert b"DENIED" in body and b"repository:acme/llm" in body and b"10000 bytes" in body
    assert str(10 * GIB).encode() in body  # the declared size, named

    # A chunk declaring too much is refused the same way, before it is read.
    started = await client.post("/v2/acme/llm/blobs/uploads/")
    assert started.status == 202
    location = started.headers["Location"]
    status, body = await raw_request(
        client, f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {GIB}\r\n\r\n",
    )  # fmt: skip
    assert status == 403 and b"QUOTA_EXCEEDED" in body
    # ... and a closing PUT with a final chunk.
    status, body = await raw_request(
        client, f"PUT {location}?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {GIB}\r\n\r\n"
    )
    assert status == 403 and b"QUOTA_EXCEEDED" in body

    # What fits still goes; at the limit, a blob the registry already stores adds nothing and goes
    # too, while one new byte does not.
    await push_blob(client, "acme/llm", b"small" * 100)
    used = (await api(client, "GET", "/api/v1/repositories/acme/llm/-/quota"))["usage_bytes"]
    await api(client, "PUT", "/api/v1/repositories/acme/llm/-/quota", {"limit_bytes": used})
    await push_image(client, "beta/llm", "v1", layers=[b"y" * 300])
    await push_blob(client, "acme/llm", b"y" * 300)
    one_more = await client.post(f"/v2/acme/llm/blobs/uploads/?digest={sha256(b'z')}", data=b"z")
    assert one_more.status == 403 and await error_code(one_more) == "DENIED"
    audit = await api(client, "GET", "/api/v1/audit?action=quota.exceeded")
    assert {e["detail"]["stage"] for e in audit["items"]} == {"upload"}
    assert [e["detail"]["limit_bytes"] for e in audit["items"]] == [used, 10_000, 10_000, 10_000]  # newest first


async def chunked(data: bytes) -> Any:
    for start in range(0, len(data), 100):
        yield data[start : start + 100]


async def test_quota_at_commit_and_at_manifest_put(make_client: ClientFactory, db: dict[str, Any]) -> None:
    client = await make_client(**db)
    await push_image(client, "acme/llm", "v1", layers=[b"a" * 500])
    await api(client, "PUT", "/api/v1/compartments/acme/quota", {"limit_bytes": 2000})
    # No size declared (chunked transfer encoding): refused once the verified size is known.
    data = b"b" * 1800
    started = await client.post("/v2/acme/llm/blobs/uploads/")
    response = await client.put(started.headers["Location"], params={"digest": sha256(data)}, data=chunked(data))
    assert response.status == 403 and await error_code(response) == "DENIED"
    message = (await response.json())["errors"][0]["message"]
    assert "compartment:acme may store" in message and "adds 1.8 KiB (1800 bytes)" in message
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(data)}")).status == 404

    # Over quota (it was lowered): the blobs are there, the manifest that would tag them is refused.
    await push_blob(client, "acme/llm", b"c" * 900)
    await api(client, "PUT", "/api/v1/compartments/acme/quota", {"limit_bytes": 1000})
    config = b'{"architecture": "amd64", "os": "linux"}'
    from tests.helpers import OCI_MANIFEST, image_manifest

    body = image_manifest(config, [b"c" * 900])
    response = await client.put("/v2/acme/llm/manifests/v2", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 403 and await error_code(response) == "DENIED"
    await api(client, "DELETE", "/api/v1/compartments/acme/quota", status=204)
    response = await client.put("/v2/acme/llm/manifests/v2", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 201


async def test_usage_counts_a_shared_blob_once(make_client: ClientFactory, db: dict[str, Any]) -> None:
    client = await make_client(**db)
    base = b"shared weights " * 1000
    first = await push_image(client, "acme/llm", "v1", layers=[base, b"acme only" * 10])
    second = await push_image(client, "beta/llm", "v1", layers=[base, b"beta only" * 10])
    third = await push_image(client, "beta/tuned", "v1", layers=[base, b"tuned only" * 20])
    usage = await api(client, "GET", "/api/v1/usage")
    repos = {u["name"]: u for u in usage["repositories"]}
    comps = {u["name"]: u for u in usage["compartments"]}
    size = {n: len(b) for n, b in (("config", first.config), ("base", base))}

    def own(image: Any) -> int:
        return len(image.layers[1]) + len(image.body)

    # The base (and the config, the same bytes everywhere) is charged to acme/llm, which stored it first.
    assert repos["acme/llm"]["charged_bytes"] == own(first) + size["base"] + size["config"]
    assert repos["beta/llm"]["charged_bytes"] == own(second)
    assert repos["beta/tuned"]["charged_bytes"] == own(third)
    for name, image in (("acme/llm", first), ("beta/llm", second), ("beta/tuned", third)):
        assert repos[name]["logical_bytes"] == own(image) + size["base"] + size["config"]
        assert repos[name]["exclusive_bytes"] == own(image)
    assert comps["beta"]["charged_bytes"] == own(second) + own(third)
    assert comps["beta"]["logical_bytes"] == own(second) + own(third) + size["base"] + size["config"]
    assert comps["beta"]["exclusive_bytes"] == own(second) + own(third)
    # Charged bytes add up to what is stored, once.
    stored = size["base"] + size["config"] + own(first) + own(second) + own(third)
    assert sum(u["charged_bytes"] for u in repos.values()) == stored

    # When the first holder goes, the next one is charged.
    await api(client, "DELETE", "/api/v1/repositories/acme/llm", status=204)
    usage = await api(client, "GET", "/api/v1/usage?compartment=beta")
    repos = {u["name"]: u for u in usage["repositories"]}
    assert repos["beta/llm"]["charged_bytes"] == own(second) + size["base"] + size["config"]
    assert [c["name"] for c in usage["compartments"]] == ["beta"]


async def test_expect_100_continue_is_answered_only_when_the_body_is_wanted(
    make_client: ClientFactory, db: dict[str, Any]
) -> None:
    """A client that waits for ``100 Continue`` (curl, .NET) gets the refusal instead of an
    invitation to send gigabytes; an accepted upload gets its 100 and goes through."""
    client = await make_client(**db)
    await push_image(client, "acme/llm", "v1", layers=[b"x" * 1000])
    await api(client, "PUT", "/api/v1/repositories/acme/llm/-/quota", {"limit_bytes": 10_000})
    digest = sha256(b"whatever")
    status, body = await raw_request(
        client, f"POST /v2/acme/llm/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {10 * GIB}\r\n\r\n",
    )  # fmt: skip
    assert status == 403 and b"100 Continue" not in body and b"QUOTA_EXCEEDED" in body

    data = b"fits in the quota"
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"POST /v2/acme/llm/blobs/uploads/?digest={sha256(data)} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
    )
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), timeout=10)).startswith(b"HTTP/1.1 100")
    assert await asyncio.wait_for(reader.readline(), timeout=10) == b"\r\n"
    writer.write(data)
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), timeout=10)).startswith(b"HTTP/1.1 201")
    writer.close()
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(data)}")).status == 200
