"""A foreign upstream: CNCF Distribution 2.8.2 (Debian's ``docker-registry``), behind the counting
proxy, which here also demands HTTP Basic credentials (the challenge the egress client answers
with the rule's user name and password when a registry asks for Basic rather than a token)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.helpers import sha256
from tests.pullthrough.support import ALL_MANIFESTS, CountingProxy, add_rule, cache_server, push


def test_pull_through_distribution_with_basic_auth(distribution: str, tmp_path: Path) -> None:
    layer = os.urandom(2 << 20)
    digest, body = push(distribution, "vendor/model", "v1", [layer], seed="distribution")
    proxy = CountingProxy(distribution).start()
    proxy.basic = "reader:Basic-Pa55"
    try:
        with cache_server(tmp_path / "cache") as cache:
            add_rule(cache.url, "dist", proxy.url, username="reader", password="Basic-Pa55")
            add_rule(cache.url, "nocreds", proxy.url)

            got = httpx.get(f"{cache.url}/v2/dist/vendor/model/manifests/v1", headers={"Accept": ALL_MANIFESTS})
            assert got.status_code == 200, got.text
            assert got.content == body and got.headers["Docker-Content-Digest"] == digest
            url = f"{cache.url}/v2/dist/vendor/model/blobs/{sha256(layer)}"
            with ThreadPoolExecutor(5) as pool:
                blobs = list(pool.map(lambda _: httpx.get(url, timeout=60), range(5)))
            assert all(b.status_code == 200 and b.content == layer for b in blobs)
            assert proxy.count("GET", f"/v2/vendor/model/blobs/{sha256(layer)}") == 1
            refused = httpx.get(f"{cache.url}/v2/nocreds/vendor/model/manifests/v1", headers={"Accept": ALL_MANIFESTS})
            assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "DENIED"
    finally:
        proxy.stop()
