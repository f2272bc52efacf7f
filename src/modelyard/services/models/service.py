"""The model service: index a version when its manifest is pushed, read the index back, and
stream one file of a version.

When the index is written: right after the manifest's own transaction, not inside it.
Extraction reads blob bytes (headers, bounded to seconds and megabytes); holding the manifest
transaction open meanwhile would hold SQLite's write lock, or PostgreSQL's row locks, and stall
every other push. The index is derived data -- recomputable from the manifest at any time --
so it is written with an idempotent replace (:meth:`ModelIndex.put`): a retried push writes
the same rows again, a push racing a delete of its manifest writes nothing (the row would
reference a manifest that is gone), and a crash between the two transactions leaves a
manifest without an index row, which the first read of that version indexes then
(:meth:`ModelService.version`), as :meth:`ModelService.backfill` does in bulk.

Extraction never fails a push: whatever the artifact holds, the push has already succeeded
when it runs, and an artifact it cannot read is stored as ``opaque`` with the reason.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import math
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.manifest import ParsedManifest, parse_manifest
from modelyard.domain.models import ModelFacts, ModelFile, ModelQuery, ModelVersionRecord, TensorEntry
from modelyard.domain.reference import is_valid_tag
from modelyard.metadata.base import MetadataStore
from modelyard.metadata.model_index import ModelIndex
from modelyard.services.models.extract import Extractor, Limits
from modelyard.services.runner import BlockingRunner
from modelyard.storage.base import BlobMissingError, BlobStore

log = logging.getLogger("modelyard.models")

_DETAILS_BYTES = 64 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileAccess:
    """One file of a version, and where its bytes are."""

    repository: str
    digest: str
    file: ModelFile
    # A local file holding exactly this file's bytes (a raw layer on a local store): sendfile.
    local_path: Path | None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def storable(facts: ModelFacts) -> ModelFacts:
    """``facts`` with details that every backend stores as JSON (finite numbers, bounded size)."""
    details = _finite(facts.details)
    if len(json.dumps(details, default=str)) > _DETAILS_BYTES:
        details = {"notes": ["details too large to keep"]}
    return replace(facts, details=json.loads(json.dumps(details, default=str)))


def not_found(repository: str, reference: str) -> RegistryError:
    return RegistryError(
        ErrorCode.NOT_FOUND,
        f"version {reference[:150]} of repository {repository} does not exist",
        detail={"repository": repository, "reference": reference[:150]},
    )


class _BlobStream(io.RawIOBase):
    """A blob's pieces (from :meth:`BlobStore.read`) as a readable file, for gzip."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._pending = piece
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


class ModelService:
    def __init__(
        self,
        metadata: MetadataStore,
        index: ModelIndex,
        store: BlobStore,
        runner: BlockingRunner,
        *,
        limits: Limits | None = None,
        concurrency: int = 2,
    ) -> None:
        self._meta = metadata
        self._index = index
        self._store = store
        self._runner = runner
        self._extractor = Extractor(store, limits)
        # At most this many extractions at once, whatever the number of pushes: each may hold
        # a header of up to ``max_safetensors_header`` bytes in memory.
        self._slots = asyncio.Semaphore(concurrency)

    # -- indexing --------------------------------------------------------------------------

    async def index(self, repository: str, digest: str, parsed: ParsedManifest) -> ModelFacts | None:
        """Extract and store a pushed manifest's facts. Never raises: the push has succeeded."""
        try:
            async with self._slots:
                return await self._runner.run(self.index_now, repository, digest, parsed)
        except Exception:  # derived data: a failure is logged, and the next read indexes again
            log.exception("indexing %s@%s failed", repository, digest)
            return None

    def index_now(self, repository: str, digest: str, parsed: ParsedManifest) -> ModelFacts:
        """Blocking: extract (bounded) and store; returns what was stored."""
        try:
            facts = self._extractor.extract(parsed)
        except Exception as exc:  # hostile input may trip any parser: record, never fail the push
            log.warning("extraction of %s@%s failed: %r", repository, digest, exc)
            facts = ModelFacts(
                packaging="artifact",
                status="opaque",
                reason=f"the registry could not read this artifact ({type(exc).__name__})",
                total_size=sum(layer.size for layer in parsed.layers),
            )
        facts = storable(facts)
        self._index.put(repository, digest, facts)
        return facts

    async def backfill(self, limit: int = 100) -> int:
        """Index manifests that have no index row (pushed before this feature, or cut short by a
        crash); how many were indexed."""
        done = 0
        for repository, digest in await self._runner.run(self._index.unindexed, limit):
            record = self._meta.manifests.get(repository, digest)
            if record is None:
                continue
            try:
                parsed = parse_manifest(record.content, record.media_type)
            except RegistryError:
                continue  # stored before validation was strict: nothing to read
            if await self.index(repository, digest, parsed) is not None:
                done += 1
        return done

    # -- reading ---------------------------------------------------------------------------

    def _digest_of(self, repository: str, reference: str) -> str:
        if is_digest(reference):
            try:
                digest = str(Digest.parse(reference))
            except RegistryError:  # a malformed digest names no version: not found, as a tag would be
                raise not_found(repository, reference) from None
            if self._meta.manifests.get(repository, digest) is None:
                raise not_found(repository, reference)
            return digest
        if not is_valid_tag(reference):
            raise not_found(repository, reference)
        record = self._meta.manifests.resolve_tag(repository, reference)
        if record is None:
            raise not_found(repository, reference)
        return record.digest

    async def version(self, repository: str, reference: str, *, with_files: bool = True) -> ModelVersionRecord:
        """A version by tag or digest, indexed now if it never was."""
        digest = self._digest_of(repository, reference)
        found = self._index.get(repository, digest, with_files=with_files)
        if found is None:
            record = self._meta.manifests.get(repository, digest)
            if record is None:
                raise not_found(repository, reference)
            try:
                parsed = parse_manifest(record.content, record.media_type)
            except RegistryError as exc:
                facts = ModelFacts(packaging="artifact", status="opaque", reason=f"manifest unreadable: {exc.message}")
                await self._runner.run(self._index.put, repository, digest, facts)
            else:
                await self.index(repository, digest, parsed)
            found = self._index.get(repository, digest, with_files=with_files)
            if found is None:
                raise not_found(repository, reference)
        return found

    def summaries(self, repository: str, digests: Sequence[str]) -> dict[str, ModelVersionRecord]:
        return self._index.summaries(repository, digests)

    def digests_starting(self, repository: str, prefix: str, limit: int = 2) -> list[str]:
        return self._index.digests_starting(repository, prefix, limit)

    def search(self, query: ModelQuery, limit: int, before: int | None) -> list[ModelVersionRecord]:
        return self._index.search(query, limit, before)

    # -- one file --------------------------------------------------------------------------

    async def file(self, repository: str, reference: str, path: str) -> FileAccess:
        version = await self.version(repository, reference, with_files=False)
        file = self._index.file(repository, version.digest, path)
        if file is None:
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"version {reference[:150]} of {repository} has no file {path[:300]!r}",
                detail={"repository": repository, "reference": reference[:150], "path": path[:300]},
            )
        if file.archive == "tar+zstd":
            raise RegistryError(
                ErrorCode.UNSUPPORTED,
                f"{path[:300]} is in a zstd-compressed layer, which this registry does not unpack; pull the "
                f"layer whole: GET /v2/{repository}/blobs/{file.layer_digest}",
                detail={"layer": file.layer_digest},
            )
        local = None
        if file.archive == "raw":
            candidate = self._store.local_path(Digest.parse(file.layer_digest))
            local = candidate if candidate is not None and candidate.exists() else None
        return FileAccess(repository, version.digest, file, local)

    # -- the tensor index of a safetensors file ---------------------------------------------

    async def tensors(self, repository: str, reference: str, path: str) -> tuple[FileAccess, list[TensorEntry]]:
        """The file and its tensors (names, dtypes, shapes, absolute byte ranges), file order.

        A version indexed before the tensor index existed has no rows: it is indexed again once
        (derived data, an idempotent replace), as a version never indexed is by :meth:`version`."""
        access = await self.file(repository, reference, path)
        if not path.lower().endswith(".safetensors"):
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"{path[:300]} has no tensor index: only safetensors files have one",
                detail={"path": path[:300]},
            )
        entries = await self._runner.run(self._index.tensors, repository, access.digest, path)
        if not entries:
            record = self._meta.manifests.get(repository, access.digest)
            try:
                parsed = None if record is None else parse_manifest(record.content, record.media_type)
            except RegistryError:
                parsed = None
            if parsed is not None:
                await self.index(repository, access.digest, parsed)
                entries = await self._runner.run(self._index.tensors, repository, access.digest, path)
        return access, entries

    async def tensor(self, repository: str, reference: str, path: str, name: str) -> tuple[FileAccess, TensorEntry]:
        """One tensor of a safetensors file; read its bytes with :meth:`read` over its range."""
        access, entries = await self.tensors(repository, reference, path)
        for entry in entries:
            if entry.name == name:
                return access, entry
        raise RegistryError(
            ErrorCode.NOT_FOUND,
            f"{path[:300]} of {repository}:{reference[:150]} has no tensor {name[:300]!r}",
            detail={"repository": repository, "path": path[:300], "tensor": name[:300]},
        )

    async def read(self, access: FileAccess, start: int, end: int) -> AsyncIterator[bytes]:
        """The file's bytes ``[start, end)``, read in a worker thread piece by piece."""
        pieces = self._pieces(access.file, start, end)
        while True:
            piece = await self._runner.run(next, pieces, None)
            if piece is None:
                return
            yield piece

    def _pieces(self, file: ModelFile, start: int, end: int) -> Iterator[bytes]:
        layer = Digest.parse(file.layer_digest)
        try:
            if file.archive == "raw":
                yield from self._store.read(layer, start, end)
            elif file.archive == "tar" and file.member_offset is not None:
                yield from self._store.read(layer, file.member_offset + start, file.member_offset + end)
            else:  # tar+gzip: decompress from the start, drop what precedes the range
                offset = (file.member_offset or 0) + start
                with gzip.GzipFile(fileobj=_BlobStream(self._store.read(layer)), mode="rb") as stream:
                    while offset > 0:
                        skipped = len(stream.read(min(offset, _CHUNK)))
                        if skipped == 0:
                            return
                        offset -= skipped
                    remaining = end - start
                    while remaining > 0:
                        piece = stream.read(min(remaining, _CHUNK))
                        if not piece:
                            return
                        remaining -= len(piece)
                        yield piece
        except BlobMissingError:
            log.error("layer %s of a model file is missing from storage", layer)
            return
