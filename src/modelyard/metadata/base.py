"""Records and the protocols of the metadata store.

The store is split by concern (repositories, blob links, uploads, manifests, tags) so that no
protocol grows into a catch-all; :class:`MetadataStore` bundles one of each. Methods are
synchronous: reads are small indexed queries that the services run inline, writes are short
transactions that the services run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RepositoryRecord:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An upload session: which repository it belongs to and how many bytes are acknowledged."""

    id: str
    repository: str
    offset: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    content: bytes
    artifact_type: str | None
    subject: str | None
    annotations: dict[str, str] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewManifest:
    """A validated manifest to store, with the digests it refers to."""

    digest: str
    media_type: str
    content: bytes
    artifact_type: str | None = None
    subject: str | None = None
    annotations: dict[str, str] | None = None
    blob_refs: Sequence[str] = field(default_factory=tuple)
    manifest_refs: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TagRecord:
    """One lifetime of a tag: it pointed to ``digest`` from ``start`` until ``end`` (or now)."""

    name: str
    digest: str
    start: datetime
    end: datetime | None


class Repositories(Protocol):
    def get(self, name: str) -> RepositoryRecord | None: ...

    def ensure(self, name: str) -> RepositoryRecord:
        """Return the repository, creating it if it does not exist."""

    def list_names(self, limit: int | None, last: str | None) -> list[str]:
        """Names in lexical order, strictly after ``last``."""


class BlobLinks(Protocol):
    def linked_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob if it is linked into ``repository``, else ``None``."""

    def stored_size(self, digest: str) -> int | None:
        """The size of a blob known to the registry in any repository."""

    def link(self, repository: str, digest: str, size: int) -> None:
        """Record the blob (if new) and link it into the repository (creating it if needed)."""

    def unlink(self, repository: str, digest: str) -> bool:
        """Remove a repository's link; the bytes stay for garbage collection."""

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        """Those of ``digests`` not linked into the repository, in the given order."""


class Uploads(Protocol):
    def create(self, upload_id: str, repository: str) -> UploadRecord: ...

    def get(self, upload_id: str) -> UploadRecord | None: ...

    def set_offset(self, upload_id: str, expected: int, offset: int) -> bool:
        """Move the acknowledged offset from ``expected`` to ``offset``; False if it had moved."""

    def complete(self, upload_id: str, digest: str, size: int) -> None:
        """In one transaction: record and link the blob, and end the session."""

    def delete(self, upload_id: str) -> bool: ...


class Manifests(Protocol):
    def get(self, repository: str, digest: str) -> ManifestRecord | None: ...

    def resolve_tag(self, repository: str, tag: str) -> ManifestRecord | None: ...

    def put(self, repository: str, manifest: NewManifest, tag: str | None) -> None:
        """In one transaction: store the manifest (if new) and point ``tag`` at it."""

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        """Those of ``digests`` that are not manifests of the repository."""

    def delete(self, repository: str, digest: str) -> bool:
        """Delete a manifest and end every tag that points to it."""

    def referrers(self, repository: str, subject: str, artifact_type: str | None) -> list[ManifestRecord]: ...


class Tags(Protocol):
    def list_names(self, repository: str, limit: int | None, last: str | None) -> list[str]:
        """Current tag names in case-insensitive lexical order, strictly after ``last``."""

    def delete(self, repository: str, tag: str) -> bool:
        """End the tag's current lifetime; the manifest stays."""

    def history(self, repository: str, tag: str) -> list[TagRecord]:
        """Every lifetime of a tag, newest first."""


class MetadataStore(Protocol):
    @property
    def repositories(self) -> Repositories: ...

    @property
    def blobs(self) -> BlobLinks: ...

    @property
    def uploads(self) -> Uploads: ...

    @property
    def manifests(self) -> Manifests: ...

    @property
    def tags(self) -> Tags: ...

    def close(self) -> None: ...


JSONDict = dict[str, Any]
