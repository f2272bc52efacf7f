"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2, GCS's XML API, ...).

Key layout, all below the configured prefix (``s3_prefix``, e.g. ``modelyard/``)::

    blobs/<algorithm>/<hex[:2]>/<hex>            a blob, named by its digest; written once
    uploads/<id>/state/<offset:020d>             JSON: what the upload is made of at that offset
    uploads/<id>/parts/<n:05d>-<token>           a part of the upload, >= 5 MiB
    uploads/<id>/tail/<start>-<end>-<token>      bytes after the last part, one object per sync
    uploads/<id>/lock                            the lease of the one writer of the upload

**Uploads.** OCI chunks come in any size, S3 multipart parts must be 5 MiB or more (but the
last) and at most 10,000. A writer buffers what it receives; whenever the tail and the buffer
reach the part size it writes one *part object* (the tail segments read back and the buffer
concatenated: memory per upload is about one part). On ``sync`` (the request's bytes are about
to be acknowledged) the rest of the buffer becomes one small tail segment and a state object
for the new offset lists the parts and segments. Part sizes start at ``s3_part_size`` and double
every 500 parts, so 10,000 parts hold well over S3's 5 TiB object limit. Every object an
upload writes carries the writer's random token, so a request that died half-way, or a racing
one, can never overwrite what an acknowledged state names; the next open at the acknowledged
offset reads that offset's state and simply ignores the rest. The SHA-256 of the acknowledged
bytes is kept by the services with the session (``storage/hashstate.py``), so no replica ever
reads an upload back to continue it.

**Commit: multipart completion to the digest key.** The digest is known only when the client
closes the upload, and S3 cannot rename. Once the services verified the digest (from the
persisted hash state), the commit starts a multipart upload *at the blob's own key* and fills it
with server-side ``UploadPartCopy`` of the part objects (in parallel; no byte passes through
the registry) plus the tail as the last part; ``CompleteMultipartUpload`` makes the object appear
under its digest key atomically and whole -- a crash before leaves no blob, only a stale
multipart upload that gc aborts. An upload that never reached a part (most configs and small
layers) is read back (less than a part), hashed again and written with one ``PutObject``. This
is the same one server-side copy a ``CompleteMultipartUpload`` to a scratch key followed by
``CopyObject`` would cost (CNCF Distribution's way), minus the scratch object, and it keeps
every acknowledged byte readable (``read_upload``), which an incomplete multipart upload is not.

**One writer at a time.** The lock is an object created with ``If-None-Match: *`` (S3
conditional writes). A writer renews it while it writes; a lock whose last write is older than
the lease (measured in the S3 server's own clock: its ``Date`` against the lock's
``Last-Modified``, so replicas' clocks do not matter) belongs to a writer that died and is
taken over. Should a server ignore conditional writes, correctness still holds through the
per-writer object names; only the busy answer is lost.

**Downloads** are a 307 to a presigned ``GET`` by default (``blob_redirect``), which serves
``Range`` itself; otherwise the registry streams ranged ``GetObject`` bodies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from modelyard.domain.digest import Digest
from modelyard.storage.base import BlobMissingError, StoredItem, UploadBusyError, UploadMissingError

MiB = 1024 * 1024
MAX_PART = 5 * 1024 * MiB
PARTS_PER_TIER = 500
LEASE_SECONDS = 30.0  # a writer renews every quarter of it; a dead one blocks its upload this long
STALE_COMMIT_SECONDS = 3600.0
_READ_PIECE = 4 * MiB
_MAX_SEGMENTS = 64
_COPY_THREADS = 8
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_PRECONDITION = {"412", "PreconditionFailed", "ConditionalRequestConflict", "409"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def part_size(number: int, base: int) -> int:
    """The size of part ``number`` (1-based): ``base``, doubled every 500 parts, at most 5 GiB
    (from a 5 MiB base, 9,999 parts hold more than S3's 5 TiB object limit)."""
    return min(base << ((number - 1) // PARTS_PER_TIER), MAX_PART)


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where and how to talk to the bucket (from ``Settings``'s ``s3_*``)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    public_endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    server_side_encryption: str | None = None
    sse_kms_key_id: str | None = None
    part_size: int = 8 * MiB
    redirect: bool = True
    lease_seconds: float = LEASE_SECONDS
    stale_commit_seconds: float = STALE_COMMIT_SECONDS


@dataclass(slots=True)
class _State:
    """An upload at one acknowledged offset: part objects, then tail segments (key, size)."""

    size: int
    parts: list[tuple[str, int]] = field(default_factory=list)
    tail: list[tuple[str, int]] = field(default_factory=list)

    def dump(self) -> bytes:
        return json.dumps({"size": self.size, "parts": self.parts, "tail": self.tail}).encode()

    @classmethod
    def load(cls, raw: bytes) -> _State:
        data = json.loads(raw)
        return cls(
            int(data["size"]),
            [(str(k), int(n)) for k, n in data["parts"]],
            [(str(k), int(n)) for k, n in data["tail"]],
        )


class S3UploadWriter:
    """Appends to one upload under its lease; see the module docstring for the part scheme."""

    def __init__(self, store: S3BlobStore, upload_id: str, state: _State, lock_etag: str) -> None:
        self._store = store
        self._id = upload_id
        self._state = state
        self._lock_etag: str | None = lock_etag
        self._renewed = time.monotonic()
        self._token = secrets.token_hex(8)
        self._buffer = bytearray()
        self._tail_bytes = sum(size for _, size in state.tail)

    def write(self, chunks: Sequence[bytes | memoryview]) -> None:
        for chunk in chunks:
            self._buffer += chunk
        self._renew()
        while True:
            target = part_size(len(self._state.parts) + 1, self._store.options.part_size)
            if self._tail_bytes + len(self._buffer) < target:
                return
            take = target - self._tail_bytes
            body = self._store.read_objects(self._state.tail) + bytes(self._buffer[:take])
            del self._buffer[:take]
            key = self._store.upload_key(self._id, f"parts/{len(self._state.parts) + 1:05d}-{self._token}")
            self._store.put(key, body)
            self._state.parts.append((key, len(body)))
            self._state.tail, self._tail_bytes = [], 0

    def sync(self) -> None:
        if self._buffer:
            start = self._written() - len(self._buffer)
            key = self._store.upload_key(self._id, f"tail/{start}-{start + len(self._buffer)}-{self._token}")
            self._store.put(key, bytes(self._buffer))
            self._state.tail.append((key, len(self._buffer)))
            self._tail_bytes += len(self._buffer)
            self._buffer.clear()
        if len(self._state.tail) > _MAX_SEGMENTS:  # many tiny chunks: fold them into one segment
            body = self._store.read_objects(self._state.tail)
            key = self._store.upload_key(self._id, f"tail/compact-{len(body)}-{secrets.token_hex(8)}")
            self._store.put(key, body)
            self._state.tail = [(key, len(body))]
        self._state.size = self._written()
        self._store.put(self._store.state_key(self._id, self._state.size), self._state.dump())

    def _written(self) -> int:
        return (
            sum(size for _, size in self._state.parts) + sum(size for _, size in self._state.tail) + len(self._buffer)
        )

    def close(self) -> None:
        if self._lock_etag is not None:
            self._store.release(self._id)
            self._lock_etag = None
        self._buffer = bytearray()

    def _renew(self) -> None:
        if self._lock_etag is None or time.monotonic() - self._renewed < self._store.options.lease_seconds / 4:
            return
        self._lock_etag = self._store.renew(self._id, self._lock_etag)
        self._renewed = time.monotonic()


class S3BlobStore:
    """:class:`~modelyard.storage.base.BlobStore` over one bucket and key prefix."""

    def __init__(self, options: S3Options, *, client: Any = None) -> None:
        self.options = options
        prefix = options.prefix.lstrip("/")
        self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": options.addressing_style},
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=64,
        )
        session = boto3.session.Session()
        self._client = client or session.client(
            "s3", endpoint_url=options.endpoint_url, region_name=options.region, config=config
        )
        self._presigner = (
            session.client("s3", endpoint_url=options.public_endpoint_url, region_name=options.region, config=config)
            if options.public_endpoint_url
            else self._client
        )
        self._sse: dict[str, str] = {}
        if options.server_side_encryption:
            self._sse["ServerSideEncryption"] = options.server_side_encryption
            if options.sse_kms_key_id:
                self._sse["SSEKMSKeyId"] = options.sse_kms_key_id

    # -- keys (the one place that knows them; layout in the module docstring) --------------------

    def blob_key(self, digest: Digest) -> str:
        return f"{self._prefix}blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"

    def upload_key(self, upload_id: str, rest: str = "") -> str:
        return f"{self._prefix}uploads/{upload_id}/{rest}"

    def state_key(self, upload_id: str, offset: int) -> str:
        return self.upload_key(upload_id, f"state/{offset:020d}")

    # -- small S3 helpers ----------------------------------------------------------------------

    def put(self, key: str, body: bytes, **extra: Any) -> str:
        response = self._client.put_object(Bucket=self.options.bucket, Key=key, Body=body, **self._sse, **extra)
        return str(response["ETag"])

    def _get(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.options.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return bytes(response["Body"].read())

    def _head_size(self, key: str) -> int | None:
        try:
            return int(self._client.head_object(Bucket=self.options.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise

    def _stream(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        """``[start, end)`` of an object in pieces; raises ``KeyError`` if it does not exist."""
        if end is not None and end <= start:
            if self._head_size(key) is None:
                raise KeyError(key)
            return
        wanted = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            response = self._client.get_object(Bucket=self.options.bucket, Key=key, Range=wanted)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise KeyError(key) from None
            if _code(exc) == "InvalidRange":  # starts past the end: nothing to send
                return
            raise
        body = response["Body"]
        try:
            yield from body.iter_chunks(_READ_PIECE)
        finally:
            body.close()

    def read_objects(self, objects: Sequence[tuple[str, int]]) -> bytes:
        """The bytes of small objects (tail segments), concatenated."""
        out = bytearray()
        for key, size in objects:
            data = self._get(key)
            if data is None or len(data) != size:
                raise UploadMissingError(f"upload segment {key} is missing or torn")
            out += data
        return bytes(out)

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.options.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _delete_prefix(self, prefix: str) -> None:
        keys = [item["Key"] for item in self._list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self._client.delete_objects(Bucket=self.options.bucket, Delete={"Objects": batch, "Quiet": True})

    # -- the writer lease ----------------------------------------------------------------------

    def _acquire(self, upload_id: str) -> str:
        key = self.upload_key(upload_id, "lock")
        for _ in range(2):
            try:
                return self.put(key, secrets.token_hex(8).encode(), IfNoneMatch="*")
            except ClientError as exc:
                if _code(exc) not in _PRECONDITION:
                    raise
            try:
                held = self._client.get_object(Bucket=self.options.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    continue  # released meanwhile: try again
                raise
            held["Body"].close()
            server_now = parsedate_to_datetime(held["ResponseMetadata"]["HTTPHeaders"]["date"])
            last_write: datetime = held["LastModified"]
            age = (server_now - last_write).total_seconds()
            if age < self.options.lease_seconds:
                raise UploadBusyError(upload_id, retry_after=self.options.lease_seconds - age)
            try:  # the writer died: take its lease over, unless someone just did
                self._client.delete_object(Bucket=self.options.bucket, Key=key, IfMatch=held["ETag"])
            except ClientError as exc:
                if _code(exc) in _PRECONDITION:
                    raise UploadBusyError(upload_id) from None
                if _code(exc) not in _MISSING:
                    raise
        raise UploadBusyError(upload_id)

    def renew(self, upload_id: str, etag: str) -> str:
        try:
            return self.put(self.upload_key(upload_id, "lock"), secrets.token_hex(8).encode(), IfMatch=etag)
        except ClientError as exc:
            if _code(exc) in _PRECONDITION or _code(exc) in _MISSING:
                raise UploadBusyError(f"{upload_id}: the writer's lease was taken over") from None
            raise

    def release(self, upload_id: str) -> None:
        self._client.delete_object(Bucket=self.options.bucket, Key=self.upload_key(upload_id, "lock"))

    def server_time(self) -> datetime:
        """The S3 server's clock (the ``Date`` of a ``HeadBucket``), for ``modelyard doctor``."""
        answer = self._client.head_bucket(Bucket=self.options.bucket)
        return parsedate_to_datetime(answer["ResponseMetadata"]["HTTPHeaders"]["date"])

    # -- BlobStore: blobs ----------------------------------------------------------------------

    def local_path(self, digest: Digest) -> Path | None:
        return None

    def redirect_url(self, digest: Digest, *, expires_in: int) -> str | None:
        if not self.options.redirect:
            return None
        url = self._presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.options.bucket, "Key": self.blob_key(digest)}, ExpiresIn=expires_in
        )
        return str(url)

    def size(self, digest: Digest) -> int | None:
        return self._head_size(self.blob_key(digest))

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            yield from self._stream(self.blob_key(digest), start, end)
        except KeyError:
            raise BlobMissingError(str(digest)) from None

    def delete(self, digest: Digest) -> None:
        self._client.delete_object(Bucket=self.options.bucket, Key=self.blob_key(digest))

    # -- BlobStore: uploads --------------------------------------------------------------------

    def start_upload(self, upload_id: str) -> None:
        self.put(self.state_key(upload_id, 0), _State(0).dump())

    def _state(self, upload_id: str, offset: int) -> _State | None:
        raw = self._get(self.state_key(upload_id, offset))
        return None if raw is None else _State.load(raw)

    def open_upload(self, upload_id: str, offset: int) -> S3UploadWriter:
        if self._state(upload_id, offset) is None:
            raise UploadMissingError(upload_id)
        etag = self._acquire(upload_id)
        state = self._state(upload_id, offset)
        if state is None:  # aborted meanwhile
            self.release(upload_id)
            raise UploadMissingError(upload_id)
        return S3UploadWriter(self, upload_id, state, etag)

    def read_upload(self, upload_id: str, length: int) -> Iterator[bytes]:
        states = sorted(int(item["Key"].rsplit("/", 1)[1]) for item in self._list(self.upload_key(upload_id, "state/")))
        covering = [offset for offset in states if offset >= length]
        if not covering:
            raise UploadMissingError(f"{upload_id} is shorter than its acknowledged offset")
        state = self._state(upload_id, covering[0])
        if state is None:
            raise UploadMissingError(upload_id)
        remaining = length
        for key, size in [*state.parts, *state.tail]:
            if remaining <= 0:
                return
            take = min(size, remaining)
            try:
                yield from self._stream(key, 0, take)
            except KeyError:
                raise UploadMissingError(f"{upload_id}: {key} is gone") from None
            remaining -= take

    def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        state = self._state(upload_id, size)
        stored = self.size(digest)
        if state is None:
            if stored is not None:
                return  # moved by an earlier attempt of this same commit
            raise UploadMissingError(upload_id)
        if stored is None:
            self._assemble(upload_id, digest, state)
        # Stored already (or just now): content addressing means the scratch objects can go.
        self._delete_prefix(self.upload_key(upload_id))

    def _assemble(self, upload_id: str, digest: Digest, state: _State) -> None:
        """Write the verified upload under its digest key, atomically (module docstring)."""
        key = self.blob_key(digest)
        tail = self.read_objects(state.tail)
        if not state.parts:
            # Less than a part: read back, so checked once more against the digest right here.
            if hashlib.new(digest.algorithm, tail).hexdigest() != digest.hex:
                raise UploadMissingError(f"the stored bytes of the upload do not hash to {digest}")
            self.put(key, tail)
            return
        bucket = self.options.bucket
        # Says "a live upload is committing to this digest" to gc's scan, which leaves that
        # digest's multipart uploads alone while the marker (and so the upload) exists.
        self.put(self.upload_key(upload_id, f"commit/{digest.algorithm}-{digest.hex}"), b"")
        multipart = self._client.create_multipart_upload(Bucket=bucket, Key=key, **self._sse)["UploadId"]
        try:

            def copy(numbered: tuple[int, tuple[str, int]]) -> dict[str, Any]:
                number, (source, _) = numbered
                answer = self._client.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=multipart,
                    PartNumber=number,
                    CopySource={"Bucket": bucket, "Key": source},
                )
                return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

            with ThreadPoolExecutor(_COPY_THREADS) as pool:
                parts = list(pool.map(copy, enumerate(state.parts, start=1)))
            if tail:
                number = len(parts) + 1
                answer = self._client.upload_part(
                    Bucket=bucket, Key=key, UploadId=multipart, PartNumber=number, Body=tail
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=multipart, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(ClientError):  # the error that got us here is the one to report
                self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=multipart)
            raise

    def abort_upload(self, upload_id: str) -> None:
        if "~" in upload_id:  # a commit's multipart upload found by scan_uploads: "<digest>~<id>"
            digest, multipart = upload_id.split("~", 1)
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.options.bucket, Key=self.blob_key(Digest.parse(digest)), UploadId=multipart
                )
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise
            return
        self._delete_prefix(self.upload_key(upload_id))

    # -- scans (garbage collection) ------------------------------------------------------------

    def scan_blobs(self) -> Iterator[StoredItem]:
        root = f"{self._prefix}blobs/"
        for item in self._list(root):
            algorithm, _, name = item["Key"][len(root) :].partition("/")
            yield StoredItem(
                f"{algorithm}:{name.rsplit('/', 1)[-1]}", int(item["Size"]), item["LastModified"].timestamp()
            )

    def scan_uploads(self) -> Iterator[StoredItem]:
        """Every upload (its size: the highest offset it recorded), and every multipart upload at a
        blob key that no live upload is committing to and that began more than
        ``stale_commit_seconds`` ago (as ``<digest>~<multipart-id>``: gc aborts it). A commit
        leaves a ``commit/<digest>`` marker in its upload before it starts its multipart upload,
        so an upload that gc keeps keeps its commit too (whatever dates a server gives)."""
        root = f"{self._prefix}uploads/"
        found: dict[str, tuple[int, float]] = {}
        committing: set[str] = set()
        for item in self._list(root):
            upload_id, _, rest = item["Key"][len(root) :].partition("/")
            size, modified = found.get(upload_id, (0, 0.0))
            if rest.startswith("state/"):
                size = max(size, int(rest.removeprefix("state/")))
            elif rest.startswith("commit/"):
                committing.add(rest.removeprefix("commit/").replace("-", ":", 1))
            found[upload_id] = (size, max(modified, item["LastModified"].timestamp()))
        for upload_id, (size, modified) in found.items():
            yield StoredItem(upload_id, size, modified)
        paginator = self._client.get_paginator("list_multipart_uploads")
        blobs = f"{self._prefix}blobs/"
        now = time.time()
        for page in paginator.paginate(Bucket=self.options.bucket, Prefix=blobs):
            for multipart in page.get("Uploads", []):
                started = multipart["Initiated"].timestamp()
                algorithm, _, name = multipart["Key"][len(blobs) :].partition("/")
                digest = f"{algorithm}:{name.rsplit('/', 1)[-1]}"
                if digest in committing or now - started < self.options.stale_commit_seconds:
                    continue  # a commit in progress
                yield StoredItem(f"{digest}~{multipart['UploadId']}", 0, started)
