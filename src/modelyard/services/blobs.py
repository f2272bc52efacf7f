"""Reading and deleting blobs as seen through one repository."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.events import Actor, BlobDeleted
from modelyard.metadata.base import MetadataStore
from modelyard.services.audit import log_events
from modelyard.services.runner import BlockingRunner
from modelyard.storage.base import BlobMissingError, BlobStore


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int
    path: Path | None
    #: A short-lived URL the client may fetch the bytes from itself (object stores), or None.
    redirect: str | None = None
    #: The bytes ``[start, end)`` from somewhere else than the store: a pull-through download
    #: still in progress (``services/proxy/``). ``None``: read the store.
    pieces: Callable[[int, int], AsyncIterator[bytes]] | None = None


def _unknown(repository: str, digest: Digest) -> RegistryError:
    return RegistryError(
        ErrorCode.BLOB_UNKNOWN,
        f"blob {digest} is not in repository {repository}",
        detail={"digest": str(digest)},
    )


class BlobService:
    def __init__(
        self, metadata: MetadataStore, store: BlobStore, runner: BlockingRunner, *, redirect_ttl: int = 1200
    ) -> None:
        self._meta = metadata
        self._store = store
        self._run = runner.run
        self._redirect_ttl = redirect_ttl

    def stat(self, repository: str, digest: Digest) -> BlobInfo:
        """A blob linked into ``repository``; a blob stored for another repository is unknown here."""
        size = self._meta.blobs.linked_size(repository, str(digest))
        if size is None:
            raise _unknown(repository, digest)
        path = self._store.local_path(digest)
        if path is not None and not path.exists():
            # The metadata knows the blob but its bytes are gone (lost outside the registry):
            # say so in the spec's terms, so the client's error names the blob to push again.
            raise RegistryError(
                ErrorCode.BLOB_UNKNOWN,
                f"blob {digest} is recorded in repository {repository} but its bytes are missing "
                "from storage; push the blob again",
                detail={"digest": str(digest)},
            )
        if path is None:  # an object store: presigning is a local computation, no request
            return BlobInfo(digest, size, None, self._store.redirect_url(digest, expires_in=self._redirect_ttl))
        return BlobInfo(digest, size, path)

    async def stream(self, digest: Digest, start: int, end: int) -> AsyncIterator[bytes]:
        """The blob's bytes ``[start, end)`` from a store that is not local, read in a worker
        thread piece by piece (one piece in memory at a time)."""
        pieces = iter(self._store.read(digest, start, end))
        while True:
            try:
                piece = await self._run(next, pieces, None)
            except BlobMissingError:  # raised before the first piece, so before any answer
                raise RegistryError(
                    ErrorCode.BLOB_UNKNOWN,
                    f"the bytes of blob {digest} are missing from storage; push the blob again",
                    detail={"digest": str(digest)},
                ) from None
            if piece is None:
                return
            yield piece

    async def read_head(self, repository: str, digest: Digest, limit: int) -> tuple[bytes, int]:
        """The first ``limit`` bytes of a blob linked into ``repository`` and its whole size:
        enough to show a small document (a model card, an eval report, an SBOM) without
        streaming a weight file into memory."""
        info = self.stat(repository, digest)

        def work() -> bytes:
            return b"".join(self._store.read(digest, 0, min(limit, info.size)))

        return await self._run(work), info.size

    async def delete(self, repository: str, digest: Digest, *, actor: Actor) -> None:
        """Unlink the blob from the repository (recording :class:`BlobDeleted` in the same
        transaction); the bytes go at garbage collection."""
        event = BlobDeleted(actor=actor, repository=repository, digest=str(digest))
        if not await self._run(self._meta.blobs.unlink, repository, str(digest), events=[event]):
            raise _unknown(repository, digest)
        log_events([event])
