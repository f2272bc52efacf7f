"""Helpers for the crash suite: fresh connections, streamed bodies, a body that pauses on cue, and
a look at what the blob store holds (files on the filesystem, objects in the S3 bucket)."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tests.interop.serverproc import ServerProcess

MiB = 1024 * 1024
S3_LEASE_S = 3.0  # the crash servers' s3_upload_lease


class BigBlob:
    """``blocks`` MiB of distinct, reproducible bytes, never held in memory whole.

    Block ``i`` is one of seven random MiB stamped with its index, so a byte in the wrong place
    (an offset off by a block, a repeated or dropped chunk) changes the digest.
    """

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks
        self._bases = [os.urandom(MiB) for _ in range(7)]
        hasher = hashlib.sha256()
        for block in self.iter(0, blocks):
            hasher.update(block)
        self.digest = "sha256:" + hasher.hexdigest()

    @property
    def size(self) -> int:
        return self.blocks * MiB

    def block(self, index: int) -> bytes:
        return index.to_bytes(8, "big") + self._bases[index % 7][8:]

    def iter(self, start: int, stop: int) -> Iterator[bytes]:
        for index in range(start, stop):
            yield self.block(index)

    def content_range(self, start: int, stop: int) -> str:
        return f"{start * MiB}-{stop * MiB - 1}"


def request(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 60,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a fresh connection; the response body is read whole (keep it small)."""
    connection = http.client.HTTPConnection(server.host, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def blob_matches(server: ServerProcess, repository: str, blob: BigBlob) -> bool:
    """Stream the blob back and compare it block by block."""
    connection = http.client.HTTPConnection(server.host, timeout=60)
    try:
        connection.request("GET", f"/v2/{repository}/blobs/{blob.digest}")
        response = connection.getresponse()
        assert response.status == 200, response.read()[:500]
        assert int(response.headers["Content-Length"]) == blob.size
        hasher = hashlib.sha256()
        for index in range(blob.blocks):
            piece = response.read(MiB)
            hasher.update(piece)
            if piece != blob.block(index):
                return False
        return response.read() == b"" and "sha256:" + hasher.hexdigest() == blob.digest
    finally:
        connection.close()


def blob_files(data_dir: Path, digest: str) -> list[Path]:
    """Every file under ``<data>/blobs`` named by ``digest``'s hex (wherever the layout puts it)."""
    hexdigest = digest.split(":", 1)[1]
    return [path for path in (data_dir / "blobs").rglob("*") if path.name == hexdigest]


@dataclass
class PausedUpload:
    """A request whose body stops after ``pause_after`` blocks until :meth:`release` (or forever)."""

    server: ServerProcess
    method: str
    path: str
    blocks: Iterator[bytes]
    length: int
    pause_after: int
    headers: dict[str, str] = field(default_factory=dict)
    result: tuple[int, bytes] | None = None
    error: BaseException | None = None
    _sent: threading.Event = field(default_factory=threading.Event)
    _go_on: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _body(self) -> Iterator[bytes]:
        for count, block in enumerate(self.blocks):
            if count == self.pause_after:
                self._sent.set()
                self._go_on.wait(60)
            yield block

    def _run(self) -> None:
        try:
            connection = http.client.HTTPConnection(self.server.host, timeout=60)
            headers = {"Content-Length": str(self.length), "Content-Type": "application/octet-stream", **self.headers}
            connection.request(self.method, self.path, body=self._body(), headers=headers)
            response = connection.getresponse()
            self.result = (response.status, response.read())
        except BaseException as exc:  # the point of the exercise: the server dies under us
            self.error = exc
        finally:
            self._sent.set()

    def start(self) -> PausedUpload:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._sent.wait(60), "the body never reached its pause point"
        return self

    def release(self) -> None:
        self._go_on.set()
        assert self._thread is not None
        self._thread.join(60)
        assert not self._thread.is_alive(), "the request did not end after the server died"


class StoredBytes(Protocol):
    """What the blob store holds, seen from outside the server (the crash tests' witness)."""

    def blobs(self, digest: str) -> list[str]:
        """Every stored copy of the blob ``digest`` (files or object keys)."""

    def upload_bytes(self, upload_id: str) -> int:
        """How many bytes of the upload the server has written to storage so far."""

    def upload_exists(self, upload_id: str) -> bool: ...


@dataclass(frozen=True)
class FilesystemBytes:
    data_dir: Path

    def blobs(self, digest: str) -> list[str]:
        return [str(path) for path in blob_files(self.data_dir, digest)]

    def upload_bytes(self, upload_id: str) -> int:
        try:
            return (self.data_dir / "uploads" / upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def upload_exists(self, upload_id: str) -> bool:
        return (self.data_dir / "uploads" / upload_id).exists()


@dataclass(frozen=True)
class S3Bytes:
    """The bucket below the server's prefix (``storage/s3.py`` documents the key layout)."""

    client: Any
    bucket: str
    prefix: str

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(page.get("Contents", []))
        return found

    def blobs(self, digest: str) -> list[str]:
        algorithm, hexdigest = digest.split(":", 1)
        key = f"{self.prefix}blobs/{algorithm}/{hexdigest[:2]}/{hexdigest}"
        return [str(item["Key"]) for item in self._objects(key) if item["Key"] == key]

    def upload_bytes(self, upload_id: str) -> int:
        base = f"{self.prefix}uploads/{upload_id}/"
        return sum(int(item["Size"]) for item in self._objects(base + "parts/") + self._objects(base + "tail/"))

    def upload_exists(self, upload_id: str) -> bool:
        return bool(self._objects(f"{self.prefix}uploads/{upload_id}/state/"))


def retry_while_busy(
    send: Callable[[], tuple[int, Any, bytes]], timeout: float = 4 * S3_LEASE_S
) -> tuple[int, Any, bytes]:
    """``send()`` again while the upload is locked to a writer that died with the server (S3's
    lease, ``storage/s3.py``; the filesystem's lock dies with the process), after the
    ``Retry-After`` the server names: the retry an OCI client makes on 429."""
    deadline = time.monotonic() + timeout
    while True:
        status, headers, body = send()
        if status != 429 or b"another request is writing" not in body or time.monotonic() > deadline:
            return status, headers, body
        wait = int(headers["Retry-After"])
        assert 1 <= wait <= S3_LEASE_S + 1, f"Retry-After {wait} s for a lease of {S3_LEASE_S} s"
        time.sleep(min(wait, 1))
