"""SIGKILL in the middle of a 200 MiB blob body: nothing torn becomes visible, acknowledged chunks
survive -- on the filesystem and in an S3 bucket (there the unacknowledged bytes are part objects
of the upload that no acknowledged state names)."""

from __future__ import annotations

import time

import pytest

from tests.crash.support import BigBlob, MiB, PausedUpload, StoredBytes, blob_matches, request, retry_while_busy
from tests.interop.serverproc import ServerProcess

BLOCKS = 200  # MiB


@pytest.fixture(scope="module")
def big_blob() -> BigBlob:
    return BigBlob(BLOCKS)


def wait_for_bytes_stored(stored: StoredBytes, upload: str, size: int, timeout: float = 60) -> int:
    """The server has written at least ``size`` bytes of the body: it is mid-upload now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = stored.upload_bytes(upload)
        if current >= size:
            return current
        time.sleep(0.02)
    raise AssertionError(f"upload {upload} did not reach {size} stored bytes in {timeout} s")


def upload_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[1]


def assert_blob_absent(server: ServerProcess, stored: StoredBytes, repository: str, digest: str) -> None:
    status, _, _ = request(server, "HEAD", f"/v2/{repository}/blobs/{digest}")
    assert status == 404
    assert stored.blobs(digest) == []


def test_killed_monolithic_put_leaves_no_blob_and_can_be_retried(
    crash_server: ServerProcess, stored_bytes: StoredBytes, big_blob: BigBlob
) -> None:
    server, repo = crash_server, "acme/big"
    status, headers, _ = request(server, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202
    location = headers["Location"]
    upload = upload_id(location)

    put = PausedUpload(
        server, "PUT", f"{location}?digest={big_blob.digest}", big_blob.iter(0, BLOCKS), big_blob.size, pause_after=48
    ).start()
    wait_for_bytes_stored(stored_bytes, upload, 32 * MiB)
    server.kill()
    put.release()
    assert put.result is None and put.error is not None, put.result

    server.restart()
    assert_blob_absent(server, stored_bytes, repo, big_blob.digest)
    # The session survived, at the offset the client was told (none of the body was acknowledged).
    status, headers, _ = request(server, "GET", location)
    assert (status, headers["Range"]) == (204, "0-0")

    # Retrying the same PUT on the same session replaces the torn bytes and commits.
    status, headers, body = retry_while_busy(
        lambda: request(
            server, "PUT", f"{location}?digest={big_blob.digest}", big_blob.iter(0, BLOCKS),
            {"Content-Length": str(big_blob.size)},
        )
    )  # fmt: skip
    assert status == 201, body
    assert headers["Docker-Content-Digest"] == big_blob.digest
    assert blob_matches(server, repo, big_blob)
    assert len(stored_bytes.blobs(big_blob.digest)) == 1
    assert not stored_bytes.upload_exists(upload)


def test_killed_chunk_resumes_from_last_acknowledged_offset(
    crash_server: ServerProcess, stored_bytes: StoredBytes, big_blob: BigBlob
) -> None:
    server, repo = crash_server, "acme/big-chunked"
    status, headers, _ = request(server, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202
    location = headers["Location"]
    upload = upload_id(location)

    acknowledged = 0
    for stop in (16, 32):
        status, headers, body = request(
            server,
            "PATCH",
            location,
            big_blob.iter(acknowledged, stop),
            {
                "Content-Range": big_blob.content_range(acknowledged, stop),
                "Content-Length": str((stop - acknowledged) * MiB),
            },
        )
        assert status == 202, body
        assert headers["Range"] == f"0-{stop * MiB - 1}"
        location, acknowledged = headers["Location"], stop

    # The third chunk (the other 168 MiB) dies a third of the way in.
    patch = PausedUpload(
        server,
        "PATCH",
        location,
        big_blob.iter(acknowledged, BLOCKS),
        (BLOCKS - acknowledged) * MiB,
        pause_after=64,
        headers={"Content-Range": big_blob.content_range(acknowledged, BLOCKS)},
    ).start()
    stored = wait_for_bytes_stored(stored_bytes, upload, (acknowledged + 32) * MiB)
    server.kill()
    patch.release()
    assert patch.result is None and patch.error is not None, patch.result
    assert stored_bytes.upload_bytes(upload) >= stored > acknowledged * MiB  # unacknowledged bytes were stored

    server.restart()
    assert_blob_absent(server, stored_bytes, repo, big_blob.digest)
    status, headers, _ = request(server, "GET", location)
    assert status == 204
    assert headers["Range"] == f"0-{acknowledged * MiB - 1}"
    assert headers["Docker-Upload-UUID"] == upload_id(location)

    # The bytes the dead request left behind do not count: continuing after them is out of order.
    status, headers, _ = request(
        server, "PATCH", location, big_blob.block(48), {"Content-Range": big_blob.content_range(48, 49)}
    )
    assert (status, headers["Range"]) == (416, f"0-{acknowledged * MiB - 1}")

    status, headers, body = retry_while_busy(
        lambda: request(
            server, "PATCH", location, big_blob.iter(acknowledged, BLOCKS),
            {
                "Content-Range": big_blob.content_range(acknowledged, BLOCKS),
                "Content-Length": str((BLOCKS - acknowledged) * MiB),
            },
        )
    )  # fmt: skip
    assert status == 202, body
    assert headers["Range"] == f"0-{big_blob.size - 1}"
    status, headers, body = request(server, "PUT", f"{headers['Location']}?digest={big_blob.digest}")
    assert status == 201, body
    assert blob_matches(server, repo, big_blob)
    assert not stored_bytes.upload_exists(upload)
