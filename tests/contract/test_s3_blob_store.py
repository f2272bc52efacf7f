"""What the S3 store adds to the blob-store contract: parts, replicas, leases, commits, redirects.

Against the moto server of ``tests/s3.py`` (or the S3 named by ``MODELYARD_TEST_S3_*``). Each
"replica" is its own :class:`S3BlobStore` (its own client and connection pool) on the same bucket
and prefix, as separate processes would be.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from dataclasses import replace

import httpx
import pytest

from modelyard.domain.digest import Digest
from modelyard.storage.base import UploadBusyError
from modelyard.storage.s3 import MAX_PART, MiB, S3BlobStore, S3Options, part_size

PART = 5 * MiB


def digest_of(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


def append(store: S3BlobStore, upload_id: str, offset: int, data: bytes, *, sync: bool = True) -> int:
    writer = store.open_upload(upload_id, offset)
    try:
        for start in range(0, len(data), MiB):
            writer.write([data[start : start + MiB]])
        if sync:
            writer.sync()
    finally:
        writer.close()
    return offset + len(data)


def keys(store: S3BlobStore, what: str) -> list[str]:
    listed = store._client.list_objects_v2(Bucket=store.options.bucket, Prefix=store.upload_key("u1", what))
    return [item["Key"] for item in listed.get("Contents", [])]


def multipart_uploads(store: S3BlobStore) -> list[dict[str, object]]:
    answer = store._client.list_multipart_uploads(Bucket=store.options.bucket, Prefix=store.options.prefix)
    return list(answer.get("Uploads", []))


def test_part_sizes_reach_past_5_tib_within_10000_parts() -> None:
    sizes = [part_size(n, PART) for n in range(1, 10_000)]
    assert all(PART <= size <= MAX_PART for size in sizes)
    assert sum(sizes) > 5 * 1024 * 1024 * MiB  # S3's largest object, with one part to spare for the tail


def test_odd_chunks_from_three_replicas_become_parts_and_one_verified_blob(s3_options: S3Options) -> None:
    replicas = [S3BlobStore(replace(s3_options, part_size=PART)) for _ in range(3)]
    data = os.urandom(13 * MiB + 12345)
    cuts = [0, 1, 700_000, 3 * MiB, 5 * MiB + 1, 9 * MiB, 11 * MiB + 7, len(data)]
    replicas[0].start_upload("u1")
    offset = 0
    for number, (start, end) in enumerate(itertools.pairwise(cuts)):
        offset = append(replicas[number % 3], "u1", offset, data[start:end])
    assert offset == len(data)
    assert len(keys(replicas[1], "parts/")) == 2  # two 5 MiB parts; the rest is tail segments
    assert b"".join(replicas[2].read_upload("u1", len(data))) == data
    assert b"".join(replicas[0].read_upload("u1", 6 * MiB)) == data[: 6 * MiB]

    digest = digest_of(data)
    replicas[1].commit_upload("u1", digest, len(data))
    assert b"".join(replicas[2].read(digest)) == data
    assert replicas[0].size(digest) == len(data)
    assert keys(replicas[0], "") == []  # scratch objects gone
    assert multipart_uploads(replicas[0]) == []  # the commit's multipart upload completed
    replicas[2].commit_upload("u1", digest, len(data))  # a retried commit: nothing to do


def test_a_chunk_that_died_after_writing_a_part_leaves_the_acknowledged_state(s3_options: S3Options) -> None:
    store = S3BlobStore(replace(s3_options, part_size=PART))
    store.start_upload("u1")
    good = os.urandom(2 * MiB)
    append(store, "u1", 0, good)
    append(store, "u1", len(good), os.urandom(7 * MiB), sync=False)  # wrote a part, never acknowledged
    assert len(keys(store, "parts/")) == 1

    rest = os.urandom(4 * MiB)
    append(store, "u1", len(good), rest)
    data = good + rest
    assert b"".join(store.read_upload("u1", len(data))) == data
    store.commit_upload("u1", digest_of(data), len(data))
    assert b"".join(store.read(digest_of(data))) == data


def test_an_offset_the_metadata_never_recorded_is_skipped_by_the_next_open(s3_options: S3Options) -> None:
    # sync() succeeded (state at 3 MiB) but the process died before the session recorded it:
    # the next request opens at the session's offset, 1 MiB, and its bytes win.
    store = S3BlobStore(replace(s3_options, part_size=PART))
    store.start_upload("u1")
    first = os.urandom(MiB)
    append(store, "u1", 0, first)
    append(store, "u1", MiB, os.urandom(2 * MiB))
    second = os.urandom(6 * MiB)
    append(store, "u1", MiB, second)
    data = first + second
    store.commit_upload("u1", digest_of(data), len(data))
    assert b"".join(store.read(digest_of(data))) == data


def test_a_dead_writers_lease_expires_and_is_taken_over(s3_options: S3Options) -> None:
    # 4 s, not 1: the lease is measured in the S3 server's clock with one-second resolution, so a
    # 1 s lease could look expired at once -- a loaded CI machine saw no busy writer at all.
    first, second = (S3BlobStore(replace(s3_options, lease_seconds=4.0)) for _ in range(2))
    first.start_upload("u1")
    first.open_upload("u1", 0)  # never closed: its process was killed
    with pytest.raises(UploadBusyError):
        second.open_upload("u1", 0)
    time.sleep(5.5)
    writer = second.open_upload("u1", 0)
    writer.write([b"taken over"])
    writer.sync()
    writer.close()
    assert b"".join(first.read_upload("u1", 10)) == b"taken over"


def test_gc_finds_and_aborts_a_dead_commits_multipart_upload(s3_options: S3Options) -> None:
    store = S3BlobStore(replace(s3_options, stale_commit_seconds=0.0))
    digest = digest_of(b"never completed")
    key = store.blob_key(digest)
    started = store._client.create_multipart_upload(Bucket=store.options.bucket, Key=key)["UploadId"]
    found = [item.key for item in store.scan_uploads()]
    assert found == [f"{digest}~{started}"]
    store.abort_upload(found[0])
    assert multipart_uploads(store) == []
    assert store.size(digest) is None

    # A commit in progress (its upload marked as committing to the digest) is left alone.
    store.start_upload("u1")
    store.put(store.upload_key("u1", f"commit/sha256-{digest.hex}"), b"")
    store._client.create_multipart_upload(Bucket=store.options.bucket, Key=key)
    assert [item.key for item in store.scan_uploads()] == ["u1"]
    store.abort_upload("u1")  # the session is gone (gc dropped it): its commit is dead too
    assert [item.key.split("~")[0] for item in store.scan_uploads()] == [str(digest)]


def test_redirect_urls_serve_the_blob_and_its_ranges_then_expire(s3_options: S3Options) -> None:
    store = S3BlobStore(s3_options)
    data = os.urandom(100_000)
    store.start_upload("u1")
    append(store, "u1", 0, data)
    digest = digest_of(data)
    store.commit_upload("u1", digest, len(data))

    url = store.redirect_url(digest, expires_in=2)
    assert url is not None
    assert httpx.get(url).content == data
    ranged = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    assert "X-Amz-Expires=2&" in url  # short-lived (moto itself does not enforce the expiry)

    assert S3BlobStore(replace(s3_options, redirect=False)).redirect_url(digest, expires_in=60) is None


def test_server_side_encryption_on_request(s3_options: S3Options) -> None:
    store = S3BlobStore(replace(s3_options, server_side_encryption="AES256", part_size=PART))
    data = os.urandom(6 * MiB)
    store.start_upload("u1")
    append(store, "u1", 0, data)
    digest = digest_of(data)
    store.commit_upload("u1", digest, len(data))
    head = store._client.head_object(Bucket=store.options.bucket, Key=store.blob_key(digest))
    assert head["ServerSideEncryption"] == "AES256"
    assert b"".join(store.read(digest)) == data
