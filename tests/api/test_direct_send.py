"""Blob downloads copied to the socket by a thread (``api/oci/direct_send.py``).

Only a blob in local files is sent this way (an object store's blobs are redirected or streamed),
so these run on the filesystem store. What a client sees must not change: byte-exact bodies and
ranges, a connection that carries the next request; a busy sender falls back to ``sendfile``; a
client that stalls or leaves frees its thread. Raw sockets play the clients that misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY as PROMETHEUS

from modelyard.app import create_app
from modelyard.config import Settings
from tests.api.support import data_of, start_upload
from tests.conftest import ClientFactory
from tests.helpers import self_signed_certificate, sha256

Client = TestClient[Any, Any]
MiB = 1024 * 1024
REPO = "acme/llm"


def copied_bytes() -> float:
    return PROMETHEUS.get_sample_value("modelyard_blob_send_copied_bytes_total") or 0.0


async def copied_since(before: float, expected: int, wait: float = 5) -> float:
    """The bytes copied since ``before`` once they reach ``expected`` (or after ``wait`` s): the
    client can have read the last byte a moment before the server counts it."""
    deadline = time.monotonic() + wait
    while copied_bytes() - before < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return copied_bytes() - before


async def pushed(client: Client, data: bytes) -> str:
    location = await start_upload(client, REPO)
    response = await client.put(location, params={"digest": sha256(data)}, data=data)
    assert response.status == 201, await response.text()
    return f"/v2/{REPO}/blobs/{sha256(data)}"


@contextlib.asynccontextmanager
async def connection(client: Client) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port, limit=MiB)
    try:
        yield reader, writer
    finally:
        writer.close()


async def ask(writer: asyncio.StreamWriter, path: str) -> None:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: registry\r\n\r\n".encode())
    await writer.drain()


async def answer_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    status_line, *lines = head.strip().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers


async def test_downloads_and_ranges_are_copied_byte_exact(make_client: ClientFactory) -> None:
    client = await make_client(blob_send_threads=2)
    data = data_of(3 * MiB + 17, seed=1)
    path = await pushed(client, data)
    before = copied_bytes()
    response = await client.get(path)
    assert response.status == 200 and await response.read() == data
    assert response.headers["Content-Length"] == str(len(data))
    assert await copied_since(before, len(data)) == len(data)
    ranged = await client.get(path, headers={"Range": "bytes=1000-2000999"})
    assert ranged.status == 206 and await ranged.read() == data[1000:2001000]
    assert ranged.headers["Content-Range"] == f"bytes 1000-2000999/{len(data)}"
    suffix = await client.get(path, headers={"Range": "bytes=-5"})
    assert suffix.status == 206 and await suffix.read() == data[-5:]
    head = await client.head(path)
    assert head.status == 200 and await head.read() == b""
    assert await copied_since(before, len(data) + 2_000_005) == len(data) + 2_000_005  # a HEAD sends no body


async def test_a_copied_download_leaves_the_connection_for_the_next_request(make_client: ClientFactory) -> None:
    client = await make_client(blob_send_threads=1)
    data = data_of(2 * MiB + 1, seed=2)
    path = await pushed(client, data)
    before = copied_bytes()
    async with connection(client) as (reader, writer):
        for _ in range(2):  # both on one connection: the first left it in order
            await ask(writer, path)
            status, headers = await answer_head(reader)
            assert status == 200 and headers.get("connection", "").lower() != "close"
            assert await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10) == data
    assert await copied_since(before, 2 * len(data)) == 2 * len(data)


async def test_with_no_threads_downloads_go_by_sendfile(make_client: ClientFactory) -> None:
    client = await make_client(blob_send_threads=0)
    data = data_of(MiB + 5, seed=3)
    path = await pushed(client, data)
    before = copied_bytes()
    response = await client.get(path)
    assert response.status == 200 and await response.read() == data
    assert copied_bytes() == before


async def test_a_busy_sender_leaves_the_next_download_to_sendfile(make_client: ClientFactory) -> None:
    client = await make_client(blob_send_threads=1)
    data = data_of(48 * MiB, seed=4)  # more than the socket buffers hold: the copy must wait
    path = await pushed(client, data)
    before = copied_bytes()
    async with connection(client) as (reader, writer):
        await ask(writer, path)
        status, _headers = await answer_head(reader)  # the one thread now waits for this reader
        assert status == 200
        other = await client.get(path)  # no thread free: sendfile, and it is not held up
        assert other.status == 200 and await other.read() == data
        assert copied_bytes() == before
        assert await asyncio.wait_for(reader.readexactly(len(data)), 30) == data
    assert await copied_since(before, len(data)) == len(data)


async def copied_again(client: Client, path: str, size: int, within: float) -> bool:
    """Whether a download is copied by a thread again (its thread freed) within ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = copied_bytes()
        response = await client.get(path)
        assert response.status == 200 and len(await response.read()) == size
        if await copied_since(before, size, wait=1) == size:
            return True
    return False


async def test_a_client_that_stops_reading_is_let_go(make_client: ClientFactory) -> None:
    client = await make_client(blob_send_threads=1, blob_send_idle_timeout=0.5)
    data = data_of(48 * MiB, seed=5)
    path = await pushed(client, data)
    async with connection(client) as (reader, writer):
        await ask(writer, path)
        assert (await answer_head(reader))[0] == 200
        await asyncio.sleep(1.5)  # reads nothing: the thread gives up and closes the connection
        received = b""
        with contextlib.suppress(ConnectionError):
            while chunk := await asyncio.wait_for(reader.read(MiB), 10):
                received += chunk
        assert len(received) < len(data)
    assert await copied_again(client, path, len(data), within=10)


async def test_a_client_that_leaves_mid_download_frees_its_thread(make_client: ClientFactory) -> None:
    client = await make_client(blob_send_threads=1)
    data = data_of(48 * MiB, seed=6)
    path = await pushed(client, data)
    async with connection(client) as (reader, writer):
        await ask(writer, path)
        assert (await answer_head(reader))[0] == 200
        await reader.readexactly(MiB)
    assert await copied_again(client, path, len(data), within=10)


def server_tls(directory: Path) -> ssl.SSLContext:
    """A TLS server context with a throwaway self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed_certificate(directory))
    return context


async def test_a_tls_connection_is_never_written_around_its_encryption(tmp_path: Path) -> None:
    """The socket under a TLS connection is there to be written, and the bytes would go out in
    clear: such downloads keep aiohttp's own path, and arrive intact."""
    settings = Settings(data_dir=tmp_path / "data", fsync=False, access_log=False, auth_enabled=False)
    server = TestServer(create_app(settings))
    await server.start_server(ssl=server_tls(tmp_path))
    async with TestClient(server) as client:
        assert client.make_url("/").scheme == "https"
        await download_over_tls(client)


async def download_over_tls(client: Client) -> None:
    data = data_of(2 * MiB + 3, seed=7)
    location = (await client.post(f"/v2/{REPO}/blobs/uploads/", ssl=False)).headers["Location"]
    stored = await client.put(location, params={"digest": sha256(data)}, data=data, ssl=False)
    assert stored.status == 201, await stored.text()
    before = copied_bytes()
    response = await client.get(f"/v2/{REPO}/blobs/{sha256(data)}", ssl=False)
    assert response.status == 200 and await response.read() == data
    ranged = await client.get(f"/v2/{REPO}/blobs/{sha256(data)}", headers={"Range": "bytes=5-9"}, ssl=False)
    assert ranged.status == 206 and await ranged.read() == data[5:10]
    assert copied_bytes() == before
