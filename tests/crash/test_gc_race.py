"""Garbage collection beside pushes of the same blobs: a 201 for a manifest means every blob it
names stays readable until the manifest is deleted, whatever the interleaving.

The reproduction of the findings issue: blobs that nothing references are old enough to
collect; a collection runs while six clients upload the same blobs again and push manifests
naming them. Before the fix a collection deleted rows in one transaction and files after it,
while a concurrent upload of the same digest saw the file still there, dropped its own bytes
and re-inserted the row, so accepted manifests named deleted bytes (and on PostgreSQL the
in-transaction re-check did not hold at READ COMMITTED). Run on SQLite with one and two
workers and on PostgreSQL with two, as real server processes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from modelyard.bootstrap import open_blob_store, open_metadata
from modelyard.config import Settings
from modelyard.services.gc import GarbageCollector, GcReport
from modelyard.storage.s3 import S3Options
from tests.backends import s3_env, s3_settings
from tests.crash.support import request
from tests.helpers import image_manifest, sha256
from tests.interop.serverproc import ServerProcess, register_servers

REPO = "acme/raced"
BLOBS = 240
CLIENTS = 6
ROUNDS = 2
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(
    params=[
        ("sqlite", 1),
        ("sqlite", 2),
        pytest.param(("postgresql", 2), marks=pytest.mark.postgres),
        pytest.param(("postgresql+s3", 2), marks=[pytest.mark.postgres, pytest.mark.slow]),  # ~80 s on moto
    ],
    ids=lambda p: f"{p[0]}-{p[1]}w",
)
def raced_server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerProcess, Settings]]:
    backend, workers = request.param
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, fsync=False, auth_enabled=False)
    extra = ["--no-access-log", "--workers", str(workers)]
    if backend.startswith("postgresql"):
        url: str = request.getfixturevalue("postgres_url")
        s3: dict[str, object] = {}
        if backend.endswith("+s3"):  # the server reads the store's settings from MODELYARD_* variables
            options: S3Options = request.getfixturevalue("s3_options")
            s3 = s3_settings(options)
            for name, value in s3_env(options, blob_redirect="false").items():
                monkeypatch.setenv(name, value)
        settings = Settings(data_dir=data_dir, fsync=False, auth_enabled=False, database_url=url, **s3)  # type: ignore[arg-type]
        extra += ["--database-url", url]
    server = ServerProcess(data_dir, tmp_path / "server.log", extra=tuple(extra))
    register_servers(request.node, [server])
    server.start()
    yield server, settings
    server.stop()


def upload(server: ServerProcess, data: bytes) -> int:
    status, _, _ = request(server, "POST", f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}", data)
    return status


def push_manifest(server: ServerProcess, layer: bytes, index: int) -> int:
    """Upload ``layer`` again plus a config of its own, then the manifest naming both."""
    config = json.dumps({"round-item": index}).encode()
    assert upload(server, layer) == 201
    assert upload(server, config) == 201
    body = image_manifest(config, [layer])
    status, _, _ = request(server, "PUT", f"/v2/{REPO}/manifests/t{index}", body, {"Content-Type": OCI_MANIFEST})
    return status


def readable(server: ServerProcess, data: bytes) -> bool:
    status, _, body = request(server, "GET", f"/v2/{REPO}/blobs/{sha256(data)}")
    return status == 200 and body == data


def race_one_round(
    server: ServerProcess, collector: GarbageCollector, round_: int, blobs: int = BLOBS
) -> tuple[int, list[bytes]]:
    """Old unreferenced blobs, then a collection racing six clients that push them again.

    Returns how many blobs the collection took and the layers of the manifests accepted.
    """
    layers = [f"round {round_} layer {i} ".encode() * 40 for i in range(blobs)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        assert set(pool.map(lambda data: upload(server, data), layers)) == {201}

    start = threading.Barrier(CLIENTS + 1)
    reports: list[GcReport] = []

    def collect() -> None:
        start.wait()
        reports.append(collector.collect(grace=timedelta(0), upload_ttl=timedelta(days=7)))

    def push(index: int) -> int:
        if index < CLIENTS:
            start.wait()
        return push_manifest(server, layers[index], round_ * blobs + index)

    gc_thread = threading.Thread(target=collect)
    gc_thread.start()
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(push, range(blobs)))
    gc_thread.join(120)
    assert not gc_thread.is_alive()
    # 400 is a clean refusal (MANIFEST_BLOB_UNKNOWN: the collection took the blob first).
    assert set(statuses) <= {201, 400}, statuses
    return len(reports[0].blobs), [layer for layer, status in zip(layers, statuses, strict=True) if status == 201]


def test_gc_beside_pushes_never_deletes_what_an_accepted_manifest_names(
    raced_server: tuple[ServerProcess, Settings],
) -> None:
    server, settings = raced_server
    collector = GarbageCollector(open_metadata(settings), open_blob_store(settings))
    collected, accepted = 0, []
    # S3 (moto) costs a dozen requests per blob: a quarter of the blobs still races six clients.
    blobs = BLOBS // 4 if settings.storage_backend == "s3" else BLOBS
    for round_ in range(ROUNDS):
        taken, layers = race_one_round(server, collector, round_, blobs)
        collected += taken
        accepted += layers

    # The race really ran: the collector found garbage, and pushes got through beside it.
    assert collected > 0
    assert accepted
    lost = [layer[:20] for layer in accepted if not readable(server, layer)]
    assert lost == [], f"{len(lost)} accepted manifests name blobs whose bytes are gone: {lost[:3]}"
    # A second pass over the settled state takes nothing that an accepted manifest needs.
    collector.collect(grace=timedelta(0), upload_ttl=timedelta(days=7))
    assert [layer for layer in accepted if not readable(server, layer)] == []
