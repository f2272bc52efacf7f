"""``egress/oci_push.py`` against real servers on 127.0.0.1.

A modelyard target with auth on and 3 s tokens: a chunk refused with ``401`` mid-blob (here the
client's renewal ahead of time is switched off, so its token does run out between chunks, as a
revoked or clock-skewed one would) is not resent with an empty body: the client takes a new
token, asks the target how far the upload got and goes on from there, reading the bytes afresh
from that offset. A server answering 500 with an endless body: only 64 KiB of it is read."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from modelyard.config import Settings
from modelyard.egress.oci import UpstreamCredentials, UpstreamUnavailable
from modelyard.egress.oci_push import OciPushClient
from tests.cli.liveserver import LiveServer

PASSWORD = "target-admin-password-1"
CHUNK = 32 << 10


class NoRenewal(OciPushClient):
    """The push client without its token renewal ahead of expiry: only the 401 path is left."""

    async def _refresh_ahead(self, scope: str) -> None:
        return None


@pytest.fixture
def short_tokens(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path / "target", fsync=False, access_log=False, auth_enabled=True, admin_password=PASSWORD
    ).model_copy(update={"token_ttl": 3})  # below Settings' 30 s floor: test only
    server = LiveServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_chunk_refused_for_an_expired_token_resumes_from_the_target_offset(short_tokens: LiveServer) -> None:
    data = os.urandom(32 << 20)  # 1024 chunks: the token (sent for 2.25 s) runs out on the way
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reads: list[int] = []

    def chunks(start: int) -> AsyncIterator[bytes]:
        reads.append(start)

        async def pieces() -> AsyncIterator[bytes]:
            for at in range(start, len(data), 1 << 20):
                yield data[at : at + (1 << 20)]

        return pieces()

    client = NoRenewal(short_tokens.url, credentials=UpstreamCredentials("admin", PASSWORD), chunk_size=CHUNK)
    try:
        assert await client.push_blob("acme/big", digest, len(data), chunks, mount_from=None) is True
    finally:
        await client.aclose()
    assert len(reads) > 1 and all(start % CHUNK == 0 for start in reads[1:]), reads  # resumed, mid-blob
    with httpx.Client(base_url=short_tokens.url, timeout=60) as remote:
        realm = remote.get("/v2/").headers["WWW-Authenticate"].split('realm="', 1)[1].split('"', 1)[0]
        scope = {"scope": "repository:acme/big:pull", "service": "modelyard"}
        token = remote.get(realm, params=scope, auth=("admin", PASSWORD)).json()["token"]
        blob = remote.get(f"/v2/acme/big/blobs/{digest}", headers={"Authorization": f"Bearer {token}"})
        assert blob.status_code == 200 and hashlib.sha256(blob.content).hexdigest() == digest.split(":")[1]


async def test_an_endless_error_body_is_read_only_so_far() -> None:
    """A registry answering 500 with a body that does not end (256 MiB here): the client keeps
    at most 64 KiB of it for the error message and hangs up, rather than reading it all into
    memory. The server counts what it managed to send before the client left."""
    sent = [0]

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        piece = b'{"errors":[{"code":"UNKNOWN","message":"' + b"x" * (64 << 10)
        try:
            while sent[0] < 256 << 20:
                await response.write(piece)
                sent[0] += len(piece)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up
        return response

    app = web.Application()
    app.router.add_get("/v2/{name:.+}/manifests/{reference}", endless)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = OciPushClient(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(UpstreamUnavailable, match="upstream answered 500"):
            await client.get_manifest("acme/llm", "v1", max_bytes=1 << 20)
        await asyncio.sleep(0.2)  # the server notices the hang-up
        assert sent[0] < 32 << 20, f"the client read {sent[0]} bytes of an error body"
    finally:
        await client.aclose()
        await runner.cleanup()
