"""The blob-store contract: what every :class:`~modelyard.storage.base.BlobStore` must do.

Run over every backend by the ``blob_store`` fixture: the filesystem, and S3 on the moto server
``tests/s3.py`` starts (or on any S3 endpoint named by ``MODELYARD_TEST_S3_*``, see there), like
the metadata contract over SQLite and PostgreSQL. The services rely on exactly these behaviours
and nothing more.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.domain.digest import Digest
from modelyard.storage.base import BlobMissingError, BlobStore, UploadBusyError, UploadMissingError
from modelyard.storage.filesystem import FilesystemBlobStore
from modelyard.storage.s3 import S3BlobStore, S3Options

BACKENDS = ["filesystem", "s3"]


@pytest.fixture(params=BACKENDS)
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "s3":
        options: S3Options = request.getfixturevalue("s3_options")
        yield S3BlobStore(options)
        return
    yield FilesystemBlobStore(tmp_path / "blobs-root", fsync=True)


def digest_of(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


def read_all(pieces: Iterator[bytes]) -> bytes:
    return b"".join(pieces)


def upload(store: BlobStore, upload_id: str, *chunks: bytes) -> int:
    """Start an upload and append ``chunks`` one acknowledged write each; returns the offset."""
    store.start_upload(upload_id)
    offset = 0
    for chunk in chunks:
        writer = store.open_upload(upload_id, offset)
        try:
            writer.write([chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]])
            writer.sync()
        finally:
            writer.close()
        offset += len(chunk)
    return offset


def stored(store: BlobStore, data: bytes, upload_id: str = "u-stored") -> Digest:
    digest = digest_of(data)
    upload(store, upload_id, data)
    store.commit_upload(upload_id, digest, len(data))
    return digest


def test_chunks_append_and_read_back(blob_store: BlobStore) -> None:
    assert upload(blob_store, "u1", b"hello ", b"world", b"") == 11
    assert read_all(blob_store.read_upload("u1", 11)) == b"hello world"
    assert read_all(blob_store.read_upload("u1", 5)) == b"hello"


def test_an_unacknowledged_chunk_is_dropped_by_the_next_open(blob_store: BlobStore) -> None:
    upload(blob_store, "u1", b"acknowledged")
    writer = blob_store.open_upload("u1", 12)
    writer.write([b" and a chunk that died half-way"])
    writer.close()  # no sync: the request failed

    writer = blob_store.open_upload("u1", 12)
    writer.write([b"!"])
    writer.sync()
    writer.close()
    assert read_all(blob_store.read_upload("u1", 13)) == b"acknowledged!"
    writer = blob_store.open_upload("u1", 13)
    writer.write([b" (unacknowledged tail)"])
    writer.close()
    digest = digest_of(b"acknowledged!")
    blob_store.commit_upload("u1", digest, 13)  # only the acknowledged bytes become the blob
    assert read_all(blob_store.read(digest)) == b"acknowledged!"


def test_writes_from_a_reused_buffer_are_kept_exactly(blob_store: BlobStore) -> None:
    """The upload service's transfer thread receives into one buffer and hands views of it to
    ``write``, refilling it as soon as ``write`` returns: a writer keeps nothing by reference.
    20 MiB crosses the filesystem's early-writeback steps (8 MiB, with fsync on) and S3's parts."""
    data = random.Random(7).randbytes(20 * 1024 * 1024 + 123)
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    blob_store.start_upload("u1")
    writer = blob_store.open_upload("u1", 0)
    try:
        for start in range(0, len(data), len(buffer)):
            piece = data[start : start + len(buffer)]
            view[: len(piece)] = piece
            writer.write([view[: len(piece)]])
        writer.sync()
    finally:
        writer.close()
    buffer[:] = bytes(len(buffer))  # reused again after the last write
    digest = digest_of(data)
    blob_store.commit_upload("u1", digest, len(data))
    assert read_all(blob_store.read(digest)) == data


def test_one_writer_at_a_time(blob_store: BlobStore) -> None:
    blob_store.start_upload("u1")
    first = blob_store.open_upload("u1", 0)
    try:
        with pytest.raises(UploadBusyError):
            blob_store.open_upload("u1", 0)
    finally:
        first.close()
    blob_store.open_upload("u1", 0).close()  # free again once the first is closed


def test_missing_uploads(blob_store: BlobStore) -> None:
    with pytest.raises(UploadMissingError):
        blob_store.open_upload("nope", 0)
    with pytest.raises(UploadMissingError):
        read_all(blob_store.read_upload("nope", 1))
    with pytest.raises(UploadMissingError):
        blob_store.commit_upload("nope", digest_of(b"never uploaded"), 14)
    blob_store.abort_upload("nope")  # not an error


def test_commit_makes_the_blob_readable_whole_and_by_range(blob_store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = stored(blob_store, data)

    assert blob_store.size(digest) == len(data)
    assert read_all(blob_store.read(digest)) == data
    assert read_all(blob_store.read(digest, 1000)) == data[1000:]
    assert read_all(blob_store.read(digest, 5, 10)) == data[5:10]
    assert read_all(blob_store.read(digest, len(data) - 1, len(data) + 50)) == data[-1:]
    assert read_all(blob_store.read(digest, 7, 7)) == b""
    # A download is served one way or another: a local file, a redirect, or the stream above.
    path = blob_store.local_path(digest)
    if path is not None:
        assert path.read_bytes() == data
    redirect = blob_store.redirect_url(digest, expires_in=60)
    assert redirect is None or redirect.startswith(("http://", "https://"))
    assert [item.key for item in blob_store.scan_uploads()] == []


def test_commit_is_idempotent_and_keeps_the_first_copy(blob_store: BlobStore) -> None:
    digest = stored(blob_store, b"same bytes", "u1")
    blob_store.commit_upload("u1", digest, 10)  # a retried commit: nothing to do

    upload(blob_store, "u2", b"same bytes")
    blob_store.commit_upload("u2", digest, 10)  # the same content from another upload
    assert read_all(blob_store.read(digest)) == b"same bytes"
    assert [item.key for item in blob_store.scan_uploads()] == []
    assert [item.key for item in blob_store.scan_blobs()] == [str(digest)]


def test_delete_and_missing_blobs(blob_store: BlobStore) -> None:
    digest = stored(blob_store, b"to be collected")
    blob_store.delete(digest)
    blob_store.delete(digest)  # a missing blob is not an error

    assert blob_store.size(digest) is None
    with pytest.raises(BlobMissingError):
        read_all(blob_store.read(digest))
    assert list(blob_store.scan_blobs()) == []


def test_scans_list_blobs_and_uploads_with_sizes(blob_store: BlobStore) -> None:
    kept = stored(blob_store, b"a blob of 16 b.!")
    upload(blob_store, "in-progress", b"12345")

    blobs = {item.key: item.size for item in blob_store.scan_blobs()}
    uploads = {item.key: item.size for item in blob_store.scan_uploads()}
    assert blobs == {str(kept): 16}
    assert uploads == {"in-progress": 5}
    assert all(item.modified > 0 for item in blob_store.scan_blobs())

    blob_store.abort_upload("in-progress")
    assert list(blob_store.scan_uploads()) == []
