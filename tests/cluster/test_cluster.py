"""Three replicas behind nginx behave as one registry (issue 14's cluster test).

PostgreSQL (the suite's), the moto S3 server, three ``modelyard serve`` on their own ports and a
real nginx configured from ``deploy/nginx/modelyard.conf`` (``conftest.py``). Proved from the
outside, with skopeo and plain HTTP through nginx, and from each replica's own access log:

- an image pushed and pulled with skopeo, its uploads' requests spread over the replicas, and a
  chunked upload whose chunks land on different replicas with one token from one of them;
- a replica SIGKILLed while it receives a large layer: skopeo's retry completes the push through
  the others and the image pulls back bit for bit;
- scheduled gc on the leader (every second) while pushes go on: the garbage goes, nothing pushed
  is lost;
- the leader SIGKILLed: another replica takes the background work over and runs gc.

The modules are ordered; each test leaves the cluster with three live replicas.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from modelyard.domain.digest import Digest
from modelyard.storage.s3 import S3BlobStore
from tests.cluster.conftest import ADMIN_PASSWORD, GC_GRACE, Cluster
from tests.helpers import sha256
from tests.interop.layouts import Image, Layout, build_image, layout_blobs

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
MiB = 1024 * 1024
CREDS = f"admin:{ADMIN_PASSWORD}"
UPLOAD_PATH = re.compile(r"/v2/[a-z0-9/._-]+/blobs/uploads/([0-9a-f-]{36})")


def push(skopeo: str, cluster: Cluster, layout: Path, tag: str, target: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [skopeo, "copy", "--retry-times", "3", "--dest-tls-verify=false", "--dest-creds", CREDS,
         f"oci:{layout}:{tag}", f"docker://{cluster.nginx.host}/{target}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def pushed(skopeo: str, cluster: Cluster, layout: Path, tag: str, target: str) -> None:
    process = push(skopeo, cluster, layout, tag, target)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"skopeo push of {target} failed:\n{out}\n{err}"


def pull_blobs(skopeo: str, cluster: Cluster, source: str, into: Path) -> dict[str, bytes]:
    result = subprocess.run(
        [skopeo, "copy", "--src-tls-verify=false", "--src-creds", CREDS,
         f"docker://{cluster.nginx.host}/{source}", f"oci:{into}:pulled"],
        check=False, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return layout_blobs(into)


def image_layout(path: Path, tag: str, sizes: list[int]) -> Image:
    image = build_image(sizes)
    Layout(path).add_image(tag, image)
    return image


def replicas_that_served(cluster: Cluster, upload_id: str) -> set[int]:
    return {replica.port for replica in cluster.replicas if f"/blobs/uploads/{upload_id}" in replica.log()}


def token(cluster: Cluster, scope: str) -> str:
    basic = base64.b64encode(CREDS.encode()).decode()
    answer = httpx.get(
        f"http://{cluster.nginx.host}/auth/token",
        params={"service": "modelyard", "scope": scope},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_skopeo_push_and_pull_with_uploads_spread_over_the_replicas(
    cluster: Cluster, skopeo: str, tmp_path: Path
) -> None:
    image = image_layout(tmp_path / "src", "v1", [3 * MiB, 200_000, 7 * MiB, 1000])
    pushed(skopeo, cluster, tmp_path / "src", "v1", "acme/cluster:v1")
    assert image.blobs.items() <= pull_blobs(skopeo, cluster, "acme/cluster:v1", tmp_path / "pulled").items()

    # Every upload's POST, PATCH and PUT went through nginx's round robin: uploads started on
    # one replica continued on another (each replica's own access log says which it served).
    uploads = set(UPLOAD_PATH.findall("".join(cluster.logs())))
    spread = [upload for upload in uploads if len(replicas_that_served(cluster, upload)) >= 2]
    assert spread, "no upload was served by more than one replica"
    assert all("/v2/acme/cluster/" in log for log in cluster.logs())

    # A chunked upload, one token (issued by whichever replica answered /auth/token) for all of it.
    bearer = {"Authorization": f"Bearer {token(cluster, 'repository:acme/chunked:push,pull')}"}
    data = os.urandom(17 * MiB + 3)
    with httpx.Client(base_url=f"http://{cluster.nginx.host}", headers=bearer, timeout=120) as http:
        started = http.post("/v2/acme/chunked/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        cuts = [0, 6 * MiB + 1, 12 * MiB, len(data)]
        for start, end in itertools.pairwise(cuts):
            answer = http.patch(
                location,
                content=data[start:end],
                headers={"Content-Range": f"{start}-{end - 1}", "Content-Type": "application/octet-stream"},
            )
            assert answer.status_code == 202, answer.text
            location = answer.headers["Location"]
        done = http.put(location, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        blob = http.get(f"/v2/acme/chunked/blobs/{sha256(data)}", follow_redirects=True)  # 307 to S3
        assert blob.content == data
    upload_id = UPLOAD_PATH.search(started.headers["Location"] if "/v2/" in started.headers["Location"] else "")
    assert upload_id is not None
    assert len(replicas_that_served(cluster, upload_id.group(1))) >= 2


def received(port: int) -> int:
    """Bytes the replica on ``port`` received on its open connections (the kernel's TCP counters)."""
    out = subprocess.run(
        ["ss", "-Htin", "state", "established", f"( sport = :{port} )"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return sum(int(n) for n in re.findall(r"bytes_received:(\d+)", out))


def test_a_replica_killed_mid_push_and_the_push_completes_through_the_others(
    cluster: Cluster, skopeo: str, tmp_path: Path
) -> None:
    image = image_layout(tmp_path / "src", "big", [160 * MiB, 2 * MiB, 5000])
    process = push(skopeo, cluster, tmp_path / "src", "big", "acme/killed:v1")
    # The replica receiving the large layer is the one whose connections take megabytes at a time.
    victim = None
    deadline = time.monotonic() + 120
    seen = {replica.port: received(replica.port) for replica in cluster.replicas}
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        for replica in cluster.replicas:
            now = received(replica.port)
            if now - seen[replica.port] > 4 * MiB and victim is None:
                victim = replica
            seen[replica.port] = now
    assert victim is not None, "no replica was seen receiving the layer"
    victim.kill()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"the push did not complete after the kill:\n{out}\n{err}"
    assert re.search(r"retry", err, re.IGNORECASE), f"skopeo did not have to retry:\n{err}"
    assert image.blobs.items() <= pull_blobs(skopeo, cluster, "acme/killed:v1", tmp_path / "pulled").items()
    victim.start()  # back to three for the next tests


def test_gc_on_the_leader_while_pushes_run_elsewhere_loses_nothing(
    cluster: Cluster, skopeo: str, tmp_path: Path
) -> None:
    garbage = image_layout(tmp_path / "garbage", "v1", [300_000, 4000])
    pushed(skopeo, cluster, tmp_path / "garbage", "v1", "acme/garbage:v1")
    bearer = {"Authorization": f"Bearer {token(cluster, 'repository:acme/garbage:push,pull,delete')}"}
    deleted = httpx.delete(f"http://{cluster.nginx.host}/v2/acme/garbage/manifests/{garbage.digest}", headers=bearer)
    assert deleted.status_code == 202
    store = S3BlobStore(cluster.s3)
    layers = [Digest.parse(sha256(layer)) for layer in garbage.layers]
    assert all(store.size(digest) is not None for digest in layers)

    # Keep pushing (through every replica, the leader among them) until the leader's gc, which
    # runs every second, has taken the garbage: its grace period is GC_GRACE seconds.
    images: dict[str, Image] = {}
    deadline = time.monotonic() + GC_GRACE + 60
    number = 0
    while any(store.size(digest) is not None for digest in layers):
        assert time.monotonic() < deadline, "gc never collected the garbage"
        number += 1
        images[f"acme/busy:v{number}"] = image_layout(tmp_path / f"busy{number}", "v1", [1 * MiB, 50_000 + number])
        pushed(skopeo, cluster, tmp_path / f"busy{number}", "v1", f"acme/busy:v{number}")
    assert number >= 2, "the garbage went before pushes ran beside the collection"
    (leader,) = cluster.leaders()
    assert re.search(r"scheduled gc removed [1-9]\d* blob", leader.log())

    for number, (name, image) in enumerate(images.items()):
        assert image.blobs.items() <= pull_blobs(skopeo, cluster, name, tmp_path / f"pulled{number}").items()


def test_the_leader_killed_and_another_takes_over_background_work(cluster: Cluster) -> None:
    (leader,) = cluster.leaders()
    leader.kill()
    deadline = time.monotonic() + 30
    while not cluster.leaders():
        assert time.monotonic() < deadline, "no replica took over background work"
        time.sleep(0.2)
    (successor,) = cluster.leaders()
    assert successor is not leader
    before = successor.log().count("scheduled gc removed")
    while successor.log().count("scheduled gc removed") == before:
        assert time.monotonic() < deadline + 30, "the new leader runs no gc"
        time.sleep(0.2)
    leader.start()
    assert cluster.leaders() == [successor]  # the restarted one follows
