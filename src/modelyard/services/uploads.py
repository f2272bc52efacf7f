"""Blob uploads: sessions, chunks, commit, cancel and cross-repository mounts.

How bytes move: the request body arrives in pieces of whatever size the socket gives; they are
gathered into batches of about 1 MiB, and each batch is hashed and written (one vectored
write) in a worker thread while the next batch is being received. One batch is in flight at
a time, so memory per upload is bounded by two batches whatever the blob size. A large body
the API can read straight from the socket (a :class:`DirectBody`) skips the event loop
altogether: one transfer thread receives into a reused buffer, hashes and writes it.

Resumability: the acknowledged offset is stored with the session after the bytes up to it
are made durable, together with the SHA-256 state at that offset (``storage/hashstate.py``), so
an upload continues after a restart, on another worker or on another replica without reading
back a byte. A worker also keeps the state in memory between chunks of the same upload; where
OpenSSL's resumable interface is missing, another worker rebuilds it by re-hashing the
acknowledged bytes (~1 s/GB, measured in ``../shared/PERF-NOTES.md``).

Committing: once the digest matched, the session records it (``committing_digest``), then one
metadata transaction claims the blob row (which keeps garbage collection away from it), moves
the bytes to their content address and ends the session. A crash after the move but before
that transaction commits leaves a session whose bytes are already in place; the client's
retried ``PUT ?digest=`` finishes it without a byte sent again.

A chunk that fails half-way (client gone, stalled body, wrong length) is not acknowledged:
the next open of the upload drops its bytes, so a retry continues from a state the client was
told about.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError, RetryLater, UploadOutOfOrder
from modelyard.domain.events import Actor
from modelyard.domain.records import UploadRecord
from modelyard.metadata.base import MetadataStore
from modelyard.services.lifecycle.quotas import QuotaService
from modelyard.services.repositories import RepositoryService
from modelyard.services.runner import BlockingRunner
from modelyard.storage import hashstate
from modelyard.storage.base import BlobStore, UploadBusyError, UploadMissingError, UploadWriter
from modelyard.storage.hashstate import ResumableSha256

BATCH_BYTES = 1024 * 1024
_MAX_CACHED_HASHERS = 4096


@dataclass(slots=True)
class _HashState:
    offset: int
    hasher: Any  # hashlib's hash object has no public type


@dataclass(frozen=True, slots=True)
class ContentRange:
    """An inclusive byte range ``start-end`` from a chunk's ``Content-Range`` header."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class DirectBody(abc.ABC):
    """A request body read in a worker thread, off the event loop (the API's fast path for
    large bodies, ``api/oci/direct_body.py``).

    The service calls :meth:`begin` on the event loop once it is ready for the bytes (quotas and
    permissions passed), then :meth:`pump` in a transfer thread, then :meth:`end` on the event
    loop whatever happened -- after the thread has returned.
    """

    @abc.abstractmethod
    async def begin(self) -> Sequence[bytes]:
        """Invite the body and take it over; return the bytes of it already received."""

    @abc.abstractmethod
    def pump(self, sink: Callable[[memoryview], None], stop: threading.Event) -> int:
        """Blocking: feed the rest of the body to ``sink`` (its buffer is reused after each call)
        and return how many bytes that was. Raises if the body ends early or stalls, or soon
        after ``stop`` is set."""

    @abc.abstractmethod
    def end(self) -> None:
        """Give the connection back to the server (it closes after the response)."""


Body = AsyncIterator[bytes] | DirectBody


def _new_hasher(algorithm: str) -> Any:
    """A hasher for ``algorithm``; for SHA-256 one whose state can be saved, where OpenSSL allows."""
    if algorithm == "sha256" and hashstate.AVAILABLE:
        return ResumableSha256()
    return hashlib.new(algorithm)


def _ended(upload_id: str) -> RegistryError:
    return RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, f"upload {upload_id} ended while it was being completed")


def _out_of_order(repository: str, record: UploadRecord, message: str) -> UploadOutOfOrder:
    return UploadOutOfOrder(repository, record.id, record.offset, message)


class UploadService:
    def __init__(
        self,
        metadata: MetadataStore,
        store: BlobStore,
        runner: BlockingRunner,
        repositories: RepositoryService,
        *,
        quotas: QuotaService | None = None,
    ) -> None:
        self._meta = metadata
        # Quotas are checked with the size a client declares before its body is read, and with
        # the verified size at commit (services/lifecycle/quotas.py).
        self._quotas = quotas
        self._repositories = repositories
        self._store = store
        self._run = runner.run
        self._submit = runner.submit
        self._submit_transfer = runner.submit_transfer
        self._hashers: OrderedDict[str, _HashState] = OrderedDict()

    async def start(
        self, repository: str, owner: str | None = None, *, declared: int | None = None, digest: Digest | None = None
    ) -> UploadRecord:
        """Open a session with an unguessable id (a random UUID4) bound to ``repository`` and ``owner``.

        ``declared``: the size of a monolithic upload's body (its ``Content-Length``), checked
        against the quotas before a byte of it is read.
        """
        await self._check_quota(repository, declared or 0, "upload", owner, digest)
        await self._repositories.require_for_push(repository, owner)
        upload_id = str(uuid.uuid4())
        await self._run(self._store.start_upload, upload_id)
        return await self._run(self._meta.uploads.create, upload_id, repository, owner)

    def session(self, repository: str, upload_id: str, owner: str | None = None) -> UploadRecord:
        """The session, if it exists *and* belongs to ``repository`` and to ``owner``.

        Ids cross neither repositories nor principals; a foreign session answers exactly like a
        missing one.
        """
        record = self._meta.uploads.get(upload_id)
        if record is None or record.repository != repository or record.owner != owner:
            raise RegistryError(
                ErrorCode.BLOB_UPLOAD_UNKNOWN,
                f"upload {upload_id} is unknown in repository {repository}: it may have been "
                "completed, cancelled or expired; start a new upload with POST /v2/<name>/blobs/uploads/",
            )
        return record

    async def append(
        self,
        repository: str,
        upload_id: str,
        body: Body,
        content_range: ContentRange | None,
        owner: str | None = None,
        declared: int | None = None,
    ) -> UploadRecord:
        """Append one chunk (``PATCH``) and return the session with its new offset (``declared``:
        the chunk's ``Content-Length``, checked against the quotas before it is read)."""
        record = self.session(repository, upload_id, owner)
        self._check_range(repository, record, content_range)
        if declared is not None:
            await self._check_quota(repository, record.offset + declared, "upload", owner)
        writer = await self._open(repository, record)
        try:
            offset = await self._receive(record, writer, body, content_range)
        finally:
            await self._run(writer.close)  # an object store's close is a request (its lease)
        return UploadRecord(record.id, repository, offset, record.created_at, record.updated_at, record.owner)

    async def commit(
        self,
        repository: str,
        upload_id: str,
        digest: Digest,
        body: Body | None,
        content_range: ContentRange | None,
        owner: str | None = None,
        declared: int | None = None,
    ) -> int:
        """Close the session (``PUT ?digest=``), with an optional last chunk; return the size.

        Quotas are checked with the final chunk's declared size before it is read, and with the
        blob's verified size before it is stored.

        The blob becomes visible only once its digest matched and it was moved into place.
        On a digest mismatch the session stays open with every byte received (a final chunk sent
        with the failing ``PUT`` included), so nothing is lost and the client may resume or cancel.
        """
        record = self.session(repository, upload_id, owner)
        self._check_range(repository, record, content_range)
        if declared is not None:
            await self._check_quota(repository, record.offset + declared, "upload", owner, digest)
        try:
            writer = await self._open(repository, record)
        except RegistryError as exc:
            if record.committing_digest is None or exc.code is not ErrorCode.BLOB_UPLOAD_UNKNOWN:
                raise
            return await self._finish_interrupted(record, digest, body)
        try:
            offset = record.offset
            if body is not None:
                offset = await self._receive(record, writer, body, content_range)
            actual = await self._digest_of(record, offset, digest.algorithm)
            if actual != digest.hex:
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID,
                    f"the {offset} bytes uploaded hash to {digest.algorithm}:{actual}, not {digest}; "
                    "the upload is still open: resend the missing or corrupt data, or cancel it",
                    detail={"expected": str(digest), "actual": f"{digest.algorithm}:{actual}", "size": offset},
                )
            await self._check_quota(repository, offset, "commit", owner, digest)
            # Recorded before the bytes move: if the process dies between the move and the
            # session's end, the client's retried PUT finds the blob in place and finishes.
            if not await self._run(self._meta.uploads.mark_committing, upload_id, str(digest)):
                raise _ended(upload_id)
            move = partial(self._store.commit_upload, upload_id, digest, offset)
            await self._complete(upload_id, digest, offset, move)
        finally:
            await self._run(writer.close)
        return offset

    async def _finish_interrupted(self, record: UploadRecord, digest: Digest, body: Body | None) -> int:
        """Finish a commit cut short after its bytes moved to their content address.

        The session recorded the digest its bytes hashed to before they moved, so only that
        digest can finish it, and only while the blob is stored at the acknowledged size.
        """
        if body is not None and await self._has_bytes(body):
            raise RegistryError(
                ErrorCode.BLOB_UPLOAD_INVALID,
                f"upload {record.id} already holds all its {record.offset} bytes; send the closing PUT without a body",
            )
        if record.committing_digest != str(digest):
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"the {record.offset} bytes uploaded hash to {record.committing_digest}, not {digest}",
                detail={"expected": str(digest), "actual": record.committing_digest, "size": record.offset},
            )

        def settle() -> None:
            if self._store.size(digest) != record.offset:
                raise UploadMissingError(record.id)

        try:
            await self._complete(record.id, digest, record.offset, settle)
        except UploadMissingError:
            raise RegistryError(
                ErrorCode.BLOB_UPLOAD_UNKNOWN,
                f"the bytes of upload {record.id} were lost; start a new upload",
            ) from None
        return record.offset

    @staticmethod
    async def _has_bytes(body: Body) -> bool:
        if isinstance(body, DirectBody):
            return True  # only ever made for a declared length of at least one byte
        async for piece in body:
            if piece:
                return True
        return False

    async def _complete(self, upload_id: str, digest: Digest, size: int, settle: Callable[[], None]) -> None:
        """Record and link the blob and end the session, ``settle`` placing the bytes meanwhile."""
        if not await self._run(self._meta.uploads.complete, upload_id, str(digest), size, settle):
            raise _ended(upload_id)
        self._hashers.pop(upload_id, None)

    async def cancel(self, repository: str, upload_id: str, owner: str | None = None) -> None:
        self.session(repository, upload_id, owner)
        await self._run(self._meta.uploads.delete, upload_id)
        await self._run(self._store.abort_upload, upload_id)
        self._hashers.pop(upload_id, None)

    async def mount(self, repository: str, digest: Digest, source: str | None, owner: str | None = None) -> int | None:
        """Link an existing blob into ``repository``; its size, or ``None`` if not mountable.

        With ``source`` the blob must be in that repository; without it, any blob the registry
        stores can be mounted (callers check the caller may read it).
        """
        key = str(digest)
        size = self._meta.blobs.linked_size(repository, key)
        if size is not None:
            return size
        size = self._meta.blobs.linked_size(source, key) if source else self._meta.blobs.stored_size(key)
        if size is None:
            return None
        await self._repositories.require_for_push(repository, owner)

        def settle() -> None:
            # Checked under the row lock that keeps garbage collection away: bytes that a
            # collection deleted just before are not linked, and the client uploads them.
            if self._store.size(digest) != size:
                raise UploadMissingError(key)

        try:
            await self._run(self._meta.blobs.link, repository, key, size, settle)
        except UploadMissingError:
            return None
        return size

    # -- internals ---------------------------------------------------------------------------

    async def _check_quota(
        self, repository: str, adding: int, stage: str, owner: str | None, digest: Digest | None = None
    ) -> None:
        if self._quotas is not None:
            actor = Actor(owner or "anonymous")
            key = None if digest is None else str(digest)
            await self._quotas.check(repository, adding, stage=stage, digest=key, actor=actor)

    def _check_range(self, repository: str, record: UploadRecord, content_range: ContentRange | None) -> None:
        if content_range is not None and content_range.start != record.offset:
            raise _out_of_order(
                repository,
                record,
                f"chunk starts at byte {content_range.start} but the upload has {record.offset} bytes; "
                f"send the next chunk from byte {record.offset}",
            )

    async def _open(self, repository: str, record: UploadRecord) -> UploadWriter:
        opening = self._submit(self._store.open_upload, record.id, record.offset)
        try:
            # Shielded: a request cancelled meanwhile (client gone, shutdown) must still close the
            # writer the thread hands over, or its lock outlives it -- for good on a filesystem
            # (an open descriptor's flock), for the lease on S3, every retry answered 429.
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(self._close_opened)
            raise
        except UploadBusyError as exc:
            # A retry will do (429 + Retry-After, which OCI clients honour; a 416 would end the
            # push): a concurrent request's writer finishes, a dead replica's lease runs out.
            wait = max(1, math.ceil(exc.retry_after))
            raise RetryLater(f"another request is writing to upload {record.id}; retry in {wait} s", wait) from None
        except UploadMissingError:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, f"upload {record.id} has no data any more") from None

    def _close_opened(self, opening: asyncio.Future[UploadWriter]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            self._submit(opening.result().close)

    async def _hash_state(self, record: UploadRecord) -> _HashState:
        """The SHA-256 of the acknowledged bytes: this worker's own, the state saved with the
        session, or (neither at hand) rebuilt by reading the bytes back."""
        state = self._hashers.pop(record.id, None)
        if state is not None and state.offset == record.offset:
            return state
        if record.hash_state is not None and hashstate.AVAILABLE:
            return _HashState(record.offset, ResumableSha256.resume(record.hash_state))
        hasher = await self._run(self._rehash, record.id, record.offset, "sha256")
        return _HashState(record.offset, hasher)

    def _rehash(self, upload_id: str, length: int, algorithm: str) -> Any:
        hasher = _new_hasher(algorithm)
        for piece in self._store.read_upload(upload_id, length):
            hasher.update(piece)
        return hasher

    async def _digest_of(self, record: UploadRecord, offset: int, algorithm: str) -> str:
        if algorithm == "sha256":
            # The saved state belongs to the session's offset, not to one a final chunk moved on.
            saved = record.hash_state if offset == record.offset else None
            state = await self._hash_state(replace(record, offset=offset, hash_state=saved))
            self._remember(record.id, state)
            return str(state.hasher.hexdigest())
        hasher = await self._run(self._rehash, record.id, offset, algorithm)
        return str(hasher.hexdigest())

    def _remember(self, upload_id: str, state: _HashState) -> None:
        self._hashers[upload_id] = state
        while len(self._hashers) > _MAX_CACHED_HASHERS:
            self._hashers.popitem(last=False)

    @staticmethod
    def _write_batch(writer: UploadWriter, hasher: Any, batch: Sequence[bytes | memoryview]) -> None:
        for piece in batch:
            hasher.update(piece)
        writer.write(batch)

    async def _receive_stream(self, body: AsyncIterator[bytes], writer: UploadWriter, hasher: Any) -> int:
        """The body from the event loop, hashed and written a batch at a time in a worker thread."""
        received = 0
        pending: asyncio.Future[None] | None = None
        try:
            batch: list[bytes] = []
            batch_size = 0
            async for piece in body:
                batch.append(piece)
                batch_size += len(piece)
                if batch_size >= BATCH_BYTES:
                    if pending is not None:
                        await pending
                    pending = self._submit(self._write_batch, writer, hasher, batch)
                    received += batch_size
                    batch, batch_size = [], 0
            if pending is not None:
                await pending
                pending = None
            if batch:
                await self._run(self._write_batch, writer, hasher, batch)
                received += batch_size
        except BaseException:
            # Never leave a batch being written when the caller closes the writer.
            if pending is not None:
                await asyncio.wait([pending])
            raise
        return received

    async def _receive_direct(self, body: DirectBody, writer: UploadWriter, hasher: Any) -> int:
        """The body read, hashed and written in one transfer thread; the event loop only waits."""
        head = await body.begin()
        stop = threading.Event()

        def transfer() -> int:
            self._write_batch(writer, hasher, head)

            def sink(piece: memoryview) -> None:
                hasher.update(piece)
                writer.write((piece,))

            return sum(len(piece) for piece in head) + body.pump(sink, stop)

        done = self._submit_transfer(transfer)
        try:
            # Shielded: a cancelled request (server shutdown) must not return while the thread
            # still writes -- the caller closes the writer next. The thread sees ``stop`` soon.
            return await asyncio.shield(done)
        except BaseException:
            stop.set()
            await asyncio.wait([done])
            raise
        finally:
            body.end()

    async def _receive(
        self,
        record: UploadRecord,
        writer: UploadWriter,
        body: Body,
        content_range: ContentRange | None,
    ) -> int:
        """Stream ``body`` into the upload; return the new acknowledged offset."""
        # A chunk that fails is not acknowledged: the next open of the upload drops its bytes, so
        # the session stays at an offset the client knows. The hasher saw them, so it is dropped
        # too (taken out of the cache here, put back only on success).
        state = await self._hash_state(record)
        if isinstance(body, DirectBody):
            received = await self._receive_direct(body, writer, state.hasher)
        else:
            received = await self._receive_stream(body, writer, state.hasher)
        if content_range is not None and content_range.length != received:
            raise RegistryError(
                ErrorCode.SIZE_INVALID,
                f"Content-Range announced {content_range.length} bytes but the body had {received}",
            )
        new_offset = record.offset + received
        await self._run(writer.sync)
        saved = state.hasher.state() if isinstance(state.hasher, ResumableSha256) else None
        if not await self._run(self._meta.uploads.set_offset, record.id, record.offset, new_offset, saved):
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, f"upload {record.id} ended while writing")
        state.offset = new_offset
        self._remember(record.id, state)
        return new_offset
