"""SIGKILL during the closing ``PUT ?digest=`` of a fully uploaded blob.

Before the fix the bytes moved to their content address first and the session ended in a
later transaction; a kill between the two left a session that reported all its bytes but
answered ``BLOB_UPLOAD_UNKNOWN "has no data any more"`` to the retried ``PUT``, and the blob
did not exist: everything had to be sent again. Now, after a restart, the upload is either
complete (the blob exists) or completable from its reported offset with no byte resent.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from modelyard.bootstrap import open_blob_store, open_metadata
from modelyard.config import Settings
from modelyard.services.gc import GarbageCollector
from tests.backends import s3_env, s3_settings
from tests.crash.support import (
    S3_LEASE_S,
    BigBlob,
    FilesystemBytes,
    S3Bytes,
    StoredBytes,
    blob_matches,
    request,
    retry_while_busy,
)
from tests.interop.serverproc import ServerProcess, register_servers

REPO = "acme/big"
BLOCKS = 32  # MiB


@pytest.fixture(scope="module")
def blob() -> BigBlob:
    return BigBlob(BLOCKS)


def upload_everything(server: ServerProcess, blob: BigBlob) -> str:
    """Start an upload and PATCH all of ``blob`` into it; returns the session's path."""
    status, headers, _ = request(server, "POST", f"/v2/{REPO}/blobs/uploads/")
    assert status == 202
    location = headers["Location"]
    status, _, _ = request(
        server, "PATCH", location, blob.iter(0, blob.blocks),
        {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
    )  # fmt: skip
    assert status == 202
    return str(location)


def send_commit(server: ServerProcess, location: str, blob: BigBlob) -> threading.Thread:
    def run() -> None:
        # The server dies under the request: the point of the exercise.
        with contextlib.suppress(OSError):
            request(server, "PUT", f"{location}?digest={blob.digest}", b"", timeout=30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_complete_or_completable(server: ServerProcess, location: str, blob: BigBlob) -> str:
    """After the restart: either the blob exists, or the session has every byte and a bodyless
    ``PUT`` finishes it. Returns which of the two it was."""
    status, headers, _ = request(server, "GET", location)
    if status == 204:
        assert headers["Range"] == f"0-{blob.size - 1}", "the session lost acknowledged bytes"
        status, _, body = retry_while_busy(lambda: request(server, "PUT", f"{location}?digest={blob.digest}", b""))
        assert status == 201, body
        outcome = "completed by the retried PUT"
    else:
        assert status == 404, "a finished upload is unknown"
        outcome = "completed before the kill"
    status, _, _ = request(server, "HEAD", f"/v2/{REPO}/blobs/{blob.digest}")
    assert status == 200
    assert blob_matches(server, REPO, blob)
    return outcome


@dataclass
class PgServer:
    server: ServerProcess
    stored: StoredBytes
    settings: Settings


@pytest.fixture(params=["filesystem", "s3"])
def pg_server(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PgServer]:
    """A server on PostgreSQL with its blobs on the filesystem or in the S3 bucket."""
    data_dir = tmp_path / "data"
    storage: dict[str, Any] = {}
    stored: StoredBytes = FilesystemBytes(data_dir)
    if request.param == "s3":
        options = request.getfixturevalue("s3_options")
        storage = s3_settings(options, blob_redirect=False, s3_upload_lease=S3_LEASE_S)
        for name, value in s3_env(options, blob_redirect="false", s3_upload_lease=str(S3_LEASE_S)).items():
            monkeypatch.setenv(name, value)
        stored = S3Bytes(request.getfixturevalue("s3_server").client(), options.bucket, options.prefix)
    server = ServerProcess(data_dir, tmp_path / "server.log", extra=("--no-access-log", "--database-url", postgres_url))
    register_servers(request.node, [server])
    server.start()
    yield PgServer(server, stored, Settings(data_dir=data_dir, database_url=postgres_url, fsync=False, **storage))
    server.stop()


@pytest.mark.postgres
def test_kill_after_the_bytes_moved_and_before_the_session_ended(
    pg_server: PgServer, postgres_url: str, blob: BigBlob
) -> None:
    """Deterministic: hold the repository row so the commit's transaction stops after the move
    (on S3: after the multipart upload to the digest key completed)."""
    server, stored = pg_server.server, pg_server.stored
    location = upload_everything(server, blob)
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as blocker:
        blocker.execute("SELECT id FROM repositories WHERE name = %s FOR UPDATE", (REPO,))
        commit = send_commit(server, location, blob)
        deadline = time.monotonic() + 30
        while not stored.blobs(blob.digest):
            assert time.monotonic() < deadline, "the commit never moved the bytes"
            time.sleep(0.01)
        server.kill()
        blocker.rollback()
    commit.join(30)
    server.start()
    # A collection in between neither drops the session nor takes its bytes (a blob file with
    # no row would otherwise look orphaned): the client may come back for it.
    settings = pg_server.settings
    report = GarbageCollector(open_metadata(settings), open_blob_store(settings)).collect(
        grace=timedelta(0), upload_ttl=timedelta(days=7)
    )
    assert report.orphan_files == [] and report.uploads == []

    assert assert_complete_or_completable(server, location, blob) == "completed by the retried PUT"
    # The retried PUT is idempotent in effect: the same blob, stored once.
    assert len(stored.blobs(blob.digest)) == 1


def test_kill_at_any_instant_of_the_commit_leaves_it_complete_or_completable(
    crash_server: ServerProcess, blob: BigBlob
) -> None:
    """Timing: kills spread over the first 30 ms of the closing PUT, fsync on (as in production)."""
    server = crash_server
    rng = random.Random(1234)
    outcomes = []
    for _ in range(6):
        location = upload_everything(server, blob)
        commit = send_commit(server, location, blob)
        time.sleep(rng.uniform(0, 0.03))
        server.kill()
        commit.join(30)
        server.start()
        outcomes.append(assert_complete_or_completable(server, location, blob))
        # Next round pushes the same digest again: remove nothing, just start a new session.
    assert outcomes
