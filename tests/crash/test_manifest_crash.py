"""SIGKILL while many clients push blobs, manifests and tags: every acknowledged push survives whole.

Eight threads each loop: push a fresh layer (single-request ``POST ?digest=``), push a manifest
referring to it under a unique tag, and move their own ``latest-<n>`` tag onto it. The server is
killed at a random moment. After a restart:

* every manifest answered 201 is served by digest and by its tag with the exact bytes, and its
  blobs are all there, byte-exact;
* every tag the registry lists resolves to a manifest whose blobs are all there (so a push that
  was in flight at the kill is either wholly present or absent);
* a moving tag is never behind its last acknowledged move.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field

from tests.crash.support import request
from tests.interop.serverproc import ServerProcess

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOSITORIES = ("crash/alpha", "crash/beta")
THREADS = 8


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Acknowledged:
    """What the server confirmed to one pusher (appended only after a 201)."""

    repository: str
    worker: int
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: list[tuple[int, str, str, bytes]] = field(default_factory=list)  # (n, tag, digest, bytes)
    latest: int | None = None  # n of the last acknowledged move of latest-<worker>


def manifest_for(config: bytes, layer: bytes, number: int) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(layer), "size": len(layer)}
            ],
            "annotations": {"n": str(number)},
        }
    ).encode()


def pusher(server: ServerProcess, state: Acknowledged, config: bytes, stop: threading.Event) -> None:
    connection = http.client.HTTPConnection(server.host, timeout=10)

    def call(method: str, path: str, body: bytes, content_type: str = "application/octet-stream") -> int:
        connection.request(method, path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        return response.status

    repo, number = state.repository, 0
    try:
        while not stop.is_set():
            layer = os.urandom(random.randint(1, 64 * 1024))
            assert call("POST", f"/v2/{repo}/blobs/uploads/?digest={sha256(layer)}", layer) == 201
            state.blobs[sha256(layer)] = layer
            body = manifest_for(config, layer, number)
            tag = f"w{state.worker}-{number:05d}"
            assert call("PUT", f"/v2/{repo}/manifests/{tag}", body, OCI_MANIFEST) == 201
            state.manifests.append((number, tag, sha256(body), body))
            assert call("PUT", f"/v2/{repo}/manifests/latest-{state.worker}", body, OCI_MANIFEST) == 201
            state.latest = number
            number += 1
    except (OSError, http.client.HTTPException):
        return  # the server died under us
    finally:
        connection.close()


def get(server: ServerProcess, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    return request(server, "GET", path, headers={"Accept": OCI_MANIFEST})


def test_acknowledged_manifests_and_tags_survive_a_kill(crash_server: ServerProcess) -> None:
    server = crash_server
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    for repo in REPOSITORIES:
        status, _, body = request(server, "POST", f"/v2/{repo}/blobs/uploads/?digest={sha256(config)}", config)
        assert status == 201, body

    states = [Acknowledged(REPOSITORIES[n % len(REPOSITORIES)], n) for n in range(THREADS)]
    stop = threading.Event()
    threads = [threading.Thread(target=pusher, args=(server, s, config, stop), daemon=True) for s in states]
    for thread in threads:
        thread.start()
    # Kill at a random moment once every pusher could have been acknowledged at least once: a
    # fixed delay left a loaded machine (PostgreSQL + S3 under a parallel suite) 2 manifests.
    deadline = time.monotonic() + 60
    while sum(len(s.manifests) for s in states) < THREADS and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.5))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    acknowledged = sum(len(s.manifests) for s in states)
    assert acknowledged >= THREADS, f"only {acknowledged} manifests were pushed before the kill"

    server.restart()

    for state in states:
        repo = state.repository
        for digest, data in state.blobs.items():
            status, _, body = get(server, f"/v2/{repo}/blobs/{digest}")
            assert status == 200, (repo, digest, body[:300])
            assert body == data, (repo, digest)
        for _number, tag, digest, data in state.manifests:
            for reference in (digest, tag):
                status, headers, body = get(server, f"/v2/{repo}/manifests/{reference}")
                assert status == 200, (repo, reference, body[:300])
                assert body == data
                assert headers["Docker-Content-Digest"] == digest
        if state.latest is not None:
            status, _, body = get(server, f"/v2/{repo}/manifests/latest-{state.worker}")
            assert status == 200, body
            # The last acknowledged move, or the one in flight at the kill; never an older one.
            assert int(json.loads(body)["annotations"]["n"]) in (state.latest, state.latest + 1)

    for repo in REPOSITORIES:
        status, _, body = get(server, f"/v2/{repo}/tags/list")
        assert status == 200, body
        tags = json.loads(body)["tags"]
        assert len(tags) >= sum(len(s.manifests) for s in states if s.repository == repo)
        for tag in tags:
            status, _, body = get(server, f"/v2/{repo}/manifests/{tag}")
            assert status == 200, f"tag {repo}:{tag} points to a missing manifest: {body[:300]!r}"
            manifest = json.loads(body)
            for descriptor in [manifest["config"], *manifest["layers"]]:
                status, headers, _ = request(server, "HEAD", f"/v2/{repo}/blobs/{descriptor['digest']}")
                assert status == 200, f"{repo}:{tag} refers to missing blob {descriptor['digest']}"
                assert int(headers["Content-Length"]) == descriptor["size"]

    # And the registry still takes pushes after the crash.
    status, _, body = request(
        server,
        "PUT",
        f"/v2/{REPOSITORIES[0]}/manifests/after-crash",
        states[0].manifests[0][3] if states[0].manifests else b"",
        {"Content-Type": OCI_MANIFEST},
    )
    assert status == 201, body
