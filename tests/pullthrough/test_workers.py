"""``modelyard serve --workers 2`` as the cache: concurrent cold pulls land on both worker
processes (SO_REUSEPORT spreads the connections), and still make one upstream download -- the
process that claims the blob's spool file downloads, the other worker's clients tail that file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import sha256
from tests.interop.serverproc import ServerProcess
from tests.pullthrough.support import CountingProxy, add_rule, cache_server, push


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "cache", tmp_path / "cache.log", extra=("--workers", "2", "--no-access-log"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_cold_pulls_across_two_workers_make_one_upstream_fetch(two_workers: ServerProcess, tmp_path: Path) -> None:
    layer, bad = os.urandom(3 << 20), os.urandom(2 << 20)
    with cache_server(tmp_path / "upstream") as upstream:
        push(upstream.url, "team/model", "v1", [layer])
        push(upstream.url, "team/bad", "v1", [bad])
        proxy = CountingProxy(upstream.url).start()
        proxy.delay = 0.01  # ~0.5 s of download: every request arrives while it runs
        try:
            add_rule(two_workers.url, "hub", proxy.url)

            def pull(url: str) -> tuple[int, bytes]:
                # A fresh connection each: the kernel picks a worker per connection.
                try:
                    with httpx.Client(timeout=60) as client:
                        response = client.get(url)
                        return response.status_code, response.content
                except httpx.HTTPError:  # broken off short of its Content-Length
                    return 0, b""

            url = f"{two_workers.url}/v2/hub/team/model/blobs/{sha256(layer)}"
            with ThreadPoolExecutor(12) as pool:
                results = list(pool.map(pull, [url] * 12))
            assert all(status == 200 and content == layer for status, content in results)
            assert proxy.count("GET", f"/v2/team/model/blobs/{sha256(layer)}") == 1

            # A corrupted download fails every client on both workers; none gets the wrong bytes.
            proxy.corrupt.add(sha256(bad))
            url = f"{two_workers.url}/v2/hub/team/bad/blobs/{sha256(bad)}"
            with ThreadPoolExecutor(8) as pool:
                broken = list(pool.map(pull, [url] * 8))
            assert all(status != 200 for status, _ in broken), [s for s, _ in broken]
            proxy.corrupt.clear()
            assert pull(url) == (200, bad)
        finally:
            proxy.stop()
