"""Large upload bodies read straight from the socket by a transfer thread (``api/oci/direct_body.py``).

Most tests here lower ``upload_direct_min_bytes`` to 1 byte so every ``Content-Length`` body takes
the direct path, and check what a client sees: byte-exact blobs, the connection closed after the
response, a body cut short or stalled acknowledged nowhere, the upload resumable. Raw sockets
play the clients that misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY as PROMETHEUS
from yarl import URL

from tests.api.support import data_of, start_upload
from tests.backends import backend  # noqa: F401  (every test here: SQLite+files and PostgreSQL+S3)
from tests.conftest import ClientFactory
from tests.helpers import error_code, sha256

Client = TestClient[Any, Any]
MiB = 1024 * 1024


def direct_bytes() -> float:
    return PROMETHEUS.get_sample_value("modelyard_upload_direct_bytes_total") or 0.0


@pytest.fixture
async def direct(make_client: ClientFactory) -> Client:
    """An app that reads every body with a Content-Length in a transfer thread."""
    return await make_client(upload_direct_min_bytes=1, upload_idle_timeout=1.0)


async def assert_blob(client: Client, repo: str, digest: str, data: bytes) -> None:
    response = await client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status == 200, await response.text()
    assert await response.read() == data


async def upload_range(client: Client, location: str) -> str:
    status = await client.get(location)
    assert status.status == 204, await status.text()
    return status.headers["Range"]


@contextlib.asynccontextmanager
async def connection(client: Client) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw TCP connection to the test server, for clients that misbehave."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def interim_answer(client: Client, head: str) -> bytes:
    """Send a request head that expects ``100 Continue``; return the server's first answer."""
    async with connection(client) as (reader, writer):
        await send(writer, head.encode())
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


def request_head(method: str, location: str, length: int, extra: str = "") -> str:
    url = URL(location)
    target = url.raw_path_qs if url.raw_query_string else url.raw_path
    return (
        f"{method} {target} HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    )


async def test_a_monolithic_body_arrives_byte_exact_and_the_connection_closes(direct: Client) -> None:
    data = data_of(8 * MiB + 4321, seed=1)
    before = direct_bytes()
    location = await start_upload(direct, "acme/llm")
    response = await direct.put(location, params={"digest": sha256(data)}, data=data)
    assert response.status == 201, await response.text()
    # aiohttp's parser still counts the bytes the thread read as a body to come: the connection
    # cannot carry another request, and the client is told so.
    assert response.headers["Connection"] == "close"
    # Most of the body went through the thread: what aiohttp parsed before the handler was ready
    # for it is bounded by its read buffer (256 KiB, paused at twice that).
    assert direct_bytes() - before >= len(data) - 4 * MiB
    await assert_blob(direct, "acme/llm", sha256(data), data)
    # The next request on the client simply opens a new connection.
    assert (await direct.head(f"/v2/acme/llm/blobs/{sha256(data)}")).status == 200


async def test_chunks_and_a_final_chunk_in_the_put(direct: Client) -> None:
    data = data_of(2 * MiB + 99, seed=2)
    location = await start_upload(direct, "acme/llm")
    for start, end in ((0, 1), (1, 700_001), (700_001, 2 * MiB)):
        response = await direct.patch(location, data=data[start:end], headers={"Content-Range": f"{start}-{end - 1}"})
        assert response.status == 202, await response.text()
        assert response.headers["Range"] == f"0-{end - 1}"
        location = response.headers["Location"]
    final = {"Content-Range": f"{2 * MiB}-{len(data) - 1}"}
    response = await direct.put(location, params={"digest": sha256(data)}, data=data[2 * MiB :], headers=final)
    assert response.status == 201, await response.text()
    await assert_blob(direct, "acme/llm", sha256(data), data)


async def test_a_single_post_upload(direct: Client) -> None:
    data = data_of(MiB + 3, seed=3)
    response = await direct.post("/v2/acme/llm/blobs/uploads/", params={"digest": sha256(data)}, data=data)
    assert response.status == 201, await response.text()
    await assert_blob(direct, "acme/llm", sha256(data), data)


async def test_a_wrong_digest_keeps_every_byte_received(direct: Client) -> None:
    data = data_of(MiB, seed=4)
    location = await start_upload(direct, "acme/llm")
    response = await direct.put(location, params={"digest": sha256(b"something else")}, data=data)
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    # As on the streamed path: the session holds the final chunk, so only the PUT is retried.
    assert await upload_range(direct, location) == f"0-{len(data) - 1}"
    assert (await direct.put(location, params={"digest": sha256(data)})).status == 201
    await assert_blob(direct, "acme/llm", sha256(data), data)


async def test_small_bodies_keep_the_connection_by_default(make_client: ClientFactory) -> None:
    client = await make_client()  # upload_direct_min_bytes: 4 MiB
    data = data_of(64 * 1024, seed=5)
    before = direct_bytes()
    location = await start_upload(client, "acme/llm")
    response = await client.put(location, params={"digest": sha256(data)}, data=data)
    assert response.status == 201
    assert response.headers.get("Connection", "keep-alive").lower() != "close"
    assert direct_bytes() == before


async def test_a_chunked_transfer_encoding_body_is_streamed_as_before(direct: Client) -> None:
    data = data_of(MiB + 7, seed=6)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 100_000):
            yield data[i : i + 100_000]

    before = direct_bytes()
    location = await start_upload(direct, "acme/llm")
    response = await direct.put(location, params={"digest": sha256(data)}, data=pieces())
    assert response.status == 201, await response.text()
    assert response.headers.get("Connection", "keep-alive").lower() != "close"
    assert direct_bytes() == before  # no Content-Length: nothing for the thread to count on
    await assert_blob(direct, "acme/llm", sha256(data), data)


async def test_a_client_that_hangs_up_mid_body_leaves_the_upload_where_it_was(direct: Client) -> None:
    data = data_of(MiB, seed=7)
    location = await start_upload(direct, "acme/llm")
    first = await direct.patch(location, data=data[:100], headers={"Content-Range": "0-99"})
    assert first.status == 202
    location = first.headers["Location"]
    # Announces the rest, sends a third of it, hangs up.
    rest = data[100:]
    head = request_head("PATCH", location, len(rest), f"Content-Range: 100-{len(data) - 1}\r\n")
    async with connection(direct) as (_, writer):
        await send(writer, head.encode() + rest[: len(rest) // 3])
    # The server notices, drops the partial chunk, and the client resumes from byte 100.
    for _ in range(100):
        await asyncio.sleep(0.05)
        if await upload_range(direct, location) == "0-99":
            response = await direct.patch(location, data=rest, headers={"Content-Range": f"100-{len(data) - 1}"})
            if response.status != 429:  # the abandoned request may still hold the writer a moment
                break
    assert response.status == 202, await response.text()
    done = await direct.put(response.headers["Location"], params={"digest": sha256(data)})
    assert done.status == 201
    await assert_blob(direct, "acme/llm", sha256(data), data)


async def test_a_stalled_body_is_answered_408_and_not_acknowledged(direct: Client) -> None:
    data = data_of(512 * 1024, seed=8)
    location = await start_upload(direct, "acme/llm")
    head = request_head("PATCH", location, len(data), "Content-Range: 0-524287\r\n")
    async with connection(direct) as (reader, writer):
        await send(writer, head.encode() + data[:200_000])
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 20)  # until the server closes
        waited = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer[:300]
    assert b"connection: close" in rest.lower()
    assert b"BLOB_UPLOAD_INVALID" in answer
    assert 0.9 <= waited < 10  # upload_idle_timeout is 1 s
    assert await upload_range(direct, location) == "0-0"
    response = await direct.patch(location, data=data, headers={"Content-Range": "0-524287"})
    assert response.status == 202


async def test_the_body_waits_for_100_continue_and_then_goes_direct(direct: Client) -> None:
    data = data_of(MiB, seed=9)
    location = await start_upload(direct, "acme/llm")
    url = URL(location).update_query(digest=sha256(data))
    head = request_head("PUT", str(url), len(data), "Expect: 100-continue\r\n")
    async with connection(direct) as (reader, writer):
        await send(writer, head.encode())
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        before = direct_bytes()
        await send(writer, data)
        answer = await asyncio.wait_for(reader.read(), 20)
    assert answer.startswith(b"HTTP/1.1 201 Created"), answer[:300]
    assert direct_bytes() - before > len(data) // 2
    await assert_blob(direct, "acme/llm", sha256(data), data)


async def test_a_refused_request_never_invites_its_body(direct: Client) -> None:
    data = data_of(MiB, seed=10)
    unknown = f"/v2/acme/llm/blobs/uploads/{'0' * 8}-0000-4000-8000-{'0' * 12}?digest={sha256(data)}"
    head = request_head("PUT", unknown, len(data), "Expect: 100-continue\r\n")
    answer = await interim_answer(direct, head)
    assert answer.startswith(b"HTTP/1.1 404"), answer[:300]  # BLOB_UPLOAD_UNKNOWN, no 100 Continue first


async def test_received_bytes_are_counted_in_the_request_metrics(direct: Client) -> None:
    data = data_of(2 * MiB, seed=11)
    route = {"route": "/v2/{name}/blobs/uploads/{uuid}"}
    before = PROMETHEUS.get_sample_value("modelyard_http_received_bytes_total", route) or 0.0
    location = await start_upload(direct, "acme/llm")
    assert (await direct.put(location, params={"digest": sha256(data)}, data=data)).status == 201
    after = PROMETHEUS.get_sample_value("modelyard_http_received_bytes_total", route) or 0.0
    assert after - before == len(data)
