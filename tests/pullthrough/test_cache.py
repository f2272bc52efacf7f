"""The pull-through cache against a real upstream modelyard, through a counting proxy.

Each test starts its own upstream, counting proxy and cache (live servers on 127.0.0.1) and
drives the cache with httpx like a client would.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.helpers import sha256
from tests.pullthrough.support import ALL_MANIFESTS, Rig, add_rule, push


def manifest(rig: Rig, repo: str, reference: str) -> httpx.Response:
    return rig.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": ALL_MANIFESTS})


def test_ten_concurrent_cold_pulls_make_one_upstream_fetch(rig: Rig) -> None:
    layer = os.urandom(3 << 20)
    digest, body = push(rig.upstream.url, "team/model", "v1", [layer], seed="cold")
    add_rule(rig.cache.url, "hub", rig.proxy.url)
    rig.proxy.delay = 0.005  # long enough for all ten requests to arrive while it downloads

    with ThreadPoolExecutor(10) as pool:
        manifests = list(pool.map(lambda _: manifest(rig, "hub/team/model", "v1"), range(10)))
    assert {r.status_code for r in manifests} == {200}
    assert {r.content for r in manifests} == {body}
    assert manifests[0].headers["Docker-Content-Digest"] == digest
    assert rig.proxy.count("GET", f"/v2/team/model/manifests/{digest}") == 1

    with ThreadPoolExecutor(10) as pool:
        blobs = list(pool.map(lambda _: rig.get(f"/v2/hub/team/model/blobs/{sha256(layer)}"), range(10)))
    assert [r.status_code for r in blobs] == [200] * 10
    assert all(r.content == layer for r in blobs)
    assert rig.proxy.count("GET", f"/v2/team/model/blobs/{sha256(layer)}") == 1

    # Cached now: served without asking the upstream again, and listed like any repository.
    again = rig.get(f"/v2/hub/team/model/blobs/{sha256(layer)}")
    assert again.content == layer
    assert rig.proxy.count("GET", f"/v2/team/model/blobs/{sha256(layer)}") == 1
    tags = rig.get("/v2/hub/team/model/tags/list").json()
    assert tags["tags"] == ["v1"]
    # The counters (process-wide here: every in-process server of the session adds to them).
    exposed = rig.get("/metrics").text
    assert 'modelyard_proxy_requests_total{kind="blob",result="miss"}' in exposed
    upstream_bytes = [line for line in exposed.splitlines() if line.startswith("modelyard_proxy_upstream_bytes_total")]
    assert upstream_bytes and float(upstream_bytes[0].split()[-1]) >= len(layer)


def test_first_client_streams_before_the_upstream_finished(rig: Rig) -> None:
    layer = os.urandom(4 << 20)
    push(rig.upstream.url, "team/big", "v1", [layer])
    add_rule(rig.cache.url, "hub", rig.proxy.url)
    gate = threading.Event()
    rig.proxy.gate = gate  # the upstream sends half the blob, then waits
    try:
        with httpx.stream("GET", f"{rig.cache.url}/v2/hub/team/big/blobs/{sha256(layer)}", timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["Content-Length"] == str(len(layer))
            pieces = response.iter_bytes()
            received = b""
            while len(received) < 1 << 20:  # a MiB arrives while the upstream is still sending
                received += next(pieces)
            assert not gate.is_set()
            gate.set()
            received += b"".join(pieces)
        assert received == layer
    finally:
        gate.set()
    assert rig.proxy.count("GET", f"/v2/team/big/blobs/{sha256(layer)}") == 1
    assert rig.get(f"/v2/hub/team/big/blobs/{sha256(layer)}").content == layer


def test_a_wrong_blob_breaks_the_pull_and_is_never_stored(rig: Rig) -> None:
    layer = os.urandom(1 << 20)
    push(rig.upstream.url, "team/bad", "v1", [layer])
    add_rule(rig.cache.url, "hub", rig.proxy.url)
    rig.proxy.corrupt.add(sha256(layer))
    rig.proxy.delay = 0.002
    # Either the body breaks off short of its Content-Length (the client was already reading),
    # or the answer is an error (the download failed before it asked): never the wrong bytes.
    try:
        broken = rig.get(f"/v2/hub/team/bad/blobs/{sha256(layer)}")
    except httpx.HTTPError:
        pass
    else:
        assert broken.status_code == 404, (broken.status_code, len(broken.content), broken.content == layer)
    assert not list((rig.cache.settings.data_dir / "proxy-spool").iterdir())
    rig.proxy.delay = 0.0
    rig.proxy.corrupt.clear()
    fixed = rig.get(f"/v2/hub/team/bad/blobs/{sha256(layer)}")
    assert fixed.status_code == 200 and fixed.content == layer
    assert rig.proxy.count("GET", f"/v2/team/bad/blobs/{sha256(layer)}") == 2


def test_tags_revalidate_after_the_ttl_not_before(rig: Rig) -> None:
    first, _ = push(rig.upstream.url, "team/moving", "prod", [b"one"], seed="1")
    add_rule(rig.cache.url, "hub", rig.proxy.url, tag_ttl_seconds=2)
    assert manifest(rig, "hub/team/moving", "prod").headers["Docker-Content-Digest"] == first
    checked_at = time.monotonic()
    second, _ = push(rig.upstream.url, "team/moving", "prod", [b"two"], seed="2")
    heads = rig.proxy.count("HEAD", "/v2/team/moving/manifests/prod")
    assert manifest(rig, "hub/team/moving", "prod").headers["Docker-Content-Digest"] == first
    assert time.monotonic() - checked_at < 2
    assert rig.proxy.count("HEAD", "/v2/team/moving/manifests/prod") == heads  # not asked within the TTL
    time.sleep(max(0.0, 2.2 - (time.monotonic() - checked_at)))
    assert manifest(rig, "hub/team/moving", "prod").headers["Docker-Content-Digest"] == second
    # Unchanged upstream after the TTL: one HEAD, no GET.
    gets = rig.proxy.count("GET", f"/v2/team/moving/manifests/{second}")
    time.sleep(2.2)
    assert manifest(rig, "hub/team/moving", "prod").headers["Docker-Content-Digest"] == second
    assert rig.proxy.count("GET", f"/v2/team/moving/manifests/{second}") == gets


def test_an_upstream_outage_serves_what_is_cached(rig: Rig) -> None:
    layer = os.urandom(256 << 10)
    digest, body = push(rig.upstream.url, "team/steady", "v1", [layer])
    add_rule(rig.cache.url, "hub", rig.proxy.url, tag_ttl_seconds=0)  # every pull revalidates
    assert manifest(rig, "hub/team/steady", "v1").content == body
    assert rig.get(f"/v2/hub/team/steady/blobs/{sha256(layer)}").content == layer
    rig.proxy.stop()
    cached = manifest(rig, "hub/team/steady", "v1")
    assert cached.status_code == 200 and cached.content == body
    assert manifest(rig, "hub/team/steady", digest).content == body
    assert rig.get(f"/v2/hub/team/steady/blobs/{sha256(layer)}").content == layer
    cold = rig.get(f"/v2/hub/team/steady/blobs/sha256:{'2' * 64}")
    assert cold.status_code == 429 and cold.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    missing = manifest(rig, "hub/team/steady", "v2")
    assert missing.status_code == 429, missing.text
    assert missing.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert "unavailable" in missing.json()["errors"][0]["message"]


def test_pulls_by_digest_and_unknowns(rig: Rig) -> None:
    digest, body = push(rig.upstream.url, "library/tool", "1.0", [b"tool layer"])
    add_rule(rig.cache.url, "mirror/lib", rig.proxy.url, upstream_prefix="library")
    fetched = manifest(rig, "mirror/lib/tool", digest)
    assert fetched.status_code == 200 and fetched.content == body
    assert rig.get(f"/v2/mirror/lib/tool/blobs/{sha256(b'tool layer')}").content == b"tool layer"
    head = httpx.head(f"{rig.cache.url}/v2/mirror/lib/tool/blobs/{sha256(b'tool layer')}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(b"tool layer"))
    unknown = manifest(rig, "mirror/lib/tool", "sha256:" + "0" * 64)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    blob = rig.get(f"/v2/mirror/lib/tool/blobs/sha256:{'1' * 64}")
    assert blob.status_code == 404 and blob.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    # Not covered by a rule: the upstream is never asked.
    before = sum(rig.proxy.counts.values())
    assert manifest(rig, "other/tool", digest).status_code == 404
    assert sum(rig.proxy.counts.values()) == before


def test_a_client_that_cannot_take_an_index_gets_its_amd64_image(rig: Rig) -> None:
    images = {
        arch: push(rig.upstream.url, "team/multi", f"only-{arch}", [arch.encode()], seed=arch)
        for arch in ("amd64", "arm64")
    }
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(body),
                 "platform": {"os": "linux", "architecture": arch}}
                for arch, (digest, body) in images.items()
            ],
        }
    ).encode()  # fmt: skip
    put = httpx.put(
        f"{rig.upstream.url}/v2/team/multi/manifests/latest",
        content=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert put.status_code == 201, put.text
    add_rule(rig.cache.url, "hub", rig.proxy.url)
    single = "application/vnd.oci.image.manifest.v1+json"
    got = rig.get("/v2/hub/team/multi/manifests/latest", headers={"Accept": single})
    assert got.status_code == 200, got.text
    assert got.headers["Docker-Content-Digest"] == images["amd64"][0] and got.content == images["amd64"][1]
    assert manifest(rig, "hub/team/multi", "latest").content == index  # a client that takes indexes gets it


def test_a_tag_that_may_not_move_here_keeps_serving_the_cached_manifest(rig: Rig) -> None:
    first, body = push(rig.upstream.url, "team/pinned", "v1", [b"first"], seed="1")
    add_rule(rig.cache.url, "hub", rig.proxy.url, tag_ttl_seconds=0)
    assert manifest(rig, "hub/team/pinned", "v1").headers["Docker-Content-Digest"] == first
    pinned = httpx.patch(
        f"{rig.cache.url}/api/v1/repositories/hub/team/pinned", json={"immutable_tag_patterns": ["v*"]}
    )
    assert pinned.status_code == 200, pinned.text
    push(rig.upstream.url, "team/pinned", "v1", [b"second"], seed="2")
    again = manifest(rig, "hub/team/pinned", "v1")  # the upstream moved it; here it is immutable
    assert again.status_code == 200 and again.content == body
