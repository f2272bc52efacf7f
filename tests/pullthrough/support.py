"""Test rig of the pull-through cache: real registries on loopback and a counting proxy.

- The upstream is a real modelyard (``LiveServer``, with or without auth).
- :class:`CountingProxy` sits between the cache and the upstream: an aiohttp app that forwards
  every request unchanged (streamed both ways) and counts them by method and path -- counting,
  not faking. It can also send blob bodies slowly or hold them half-way (``gate``) to show the
  cache streams while it stores, corrupt a blob (to show a wrong blob is never stored), and be
  stopped (an upstream outage: connection refused).
- The cache is another modelyard with a proxy rule pointing at the counting proxy.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from aiohttp import web

from modelyard.config import Settings
from tests.cli.liveserver import LiveServer
from tests.helpers import sha256

START_TIMEOUT = 20.0
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class ThreadServer:
    """Any aiohttp application on a free port of 127.0.0.1, its loop in a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="pull-through-test-server", daemon=True)
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self.app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self.port = int(runner.addresses[0][1])
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    def start(self) -> ThreadServer:
        self._thread.start()
        assert self._ready.wait(START_TIMEOUT), "the test server did not start"
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT)


class CountingProxy:
    """Forwards to ``upstream`` and counts ``(method, path)``; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[tuple[str, str]] = Counter()
        self.piece = 64 * 1024
        self.delay = 0.0  # seconds between blob pieces
        self.gate: threading.Event | None = None  # hold a blob body after its first half until set
        self.corrupt: set[str] = set()  # digests whose bodies get one byte flipped
        self.basic: str | None = None  # "user:password": answer 401 + a Basic challenge without it
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)
        self.server = ThreadServer(app)
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> CountingProxy:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.counts[(method, path)]

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.counts[(request.method, request.path)] += 1
        if self.basic is not None:
            wanted = "Basic " + base64.b64encode(self.basic.encode()).decode()
            if request.headers.get("Authorization") != wanted:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="counting-proxy"'})
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None, allow_redirects=False
        ) as answer:
            response = web.StreamResponse(status=answer.status)
            for name, value in answer.headers.items():
                if name.lower() not in HOP_HEADERS:
                    response.headers[name] = value
            if answer.content_length is not None:
                response.content_length = answer.content_length
            await response.prepare(request)
            is_blob = "/blobs/sha256:" in request.path and request.method == "GET"
            digest = request.path.rsplit("/", 1)[-1]
            sent = 0
            half = (answer.content_length or 0) // 2
            async for received in answer.content.iter_chunked(self.piece):
                piece = received
                if is_blob and digest in self.corrupt and sent == 0:
                    piece = bytes([received[0] ^ 0xFF]) + received[1:]
                if is_blob and self.gate is not None and sent >= half:
                    gate = self.gate
                    await asyncio.get_running_loop().run_in_executor(None, gate.wait, 60)
                await response.write(piece)
                sent += len(piece)
                if is_blob and self.delay:
                    await asyncio.sleep(self.delay)
            await response.write_eof()
            return response


@contextmanager
def cache_server(tmp: Any, **settings: Any) -> Iterator[LiveServer]:
    values = {"data_dir": tmp, "fsync": False, "access_log": False, "auth_enabled": False, **settings}
    server = LiveServer(Settings(**values)).start()
    try:
        yield server
    finally:
        server.stop()


def add_rule(cache_url: str, prefix: str, upstream: str, token: str | None = None, **fields: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{cache_url}/api/v1/proxies", json={"prefix": prefix, "upstream_url": upstream, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def push(registry: str, repo: str, tag: str, layers: list[bytes], seed: str = "") -> tuple[str, bytes]:
    """Push a small OCI image to a registry with auth off; returns (digest, manifest bytes)."""
    import json

    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    with httpx.Client(base_url=registry, timeout=60) as http:
        for blob in [config, *layers]:
            started = http.post(f"/v2/{repo}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["Location"]  # Distribution's carries a query of its own
            separator = "&" if "?" in location else "?"
            done = http.put(f"{location}{separator}digest={sha256(blob)}", content=blob)
            assert done.status_code == 201, done.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(config),
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b), "size": len(b)}
                    for b in layers
                ],
            }
        ).encode()
        put = http.put(
            f"/v2/{repo}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert put.status_code == 201, put.text
    return sha256(manifest), manifest


ALL_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


@dataclass
class Rig:
    """An upstream modelyard, the counting proxy in front of it, and a cache (auth off)."""

    upstream: LiveServer
    proxy: CountingProxy
    cache: LiveServer

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.cache.url}{path}", timeout=60, **kwargs)
