"""The protocols of the metadata store (the records they speak in are in ``domain/records.py``).

The store is split by concern (repositories, blob links, uploads, manifests, tags) so that no
protocol grows into a catch-all; :class:`MetadataStore` bundles one of each. Methods are
synchronous: reads are small indexed queries that the services run inline, writes are short
transactions that the services run in a worker thread.

A write that makes an auditable change takes ``events`` (``domain/events.py``) and inserts
them into the outbox in its own transaction, and only if it changed something: a write that
is refused or finds nothing to change records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from modelyard.domain.aliases import TagChange
from modelyard.domain.events import Event
from modelyard.domain.records import (
    CompartmentRecord,
    ManifestRecord,
    NewManifest,
    RegistryConfigRecord,
    RepositoryDetails,
    RepositoryFilter,
    RepositoryRecord,
    RepositorySettings,
    TagRecord,
    UploadRecord,
    VersionRecord,
)
from modelyard.metadata.identity import ApiKeys, AuditLog, LoginThrottle, Policies, Principals, Secrets


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

    def link(self, repository: str, digest: str, size: int, settle: Callable[[], None] | None = None) -> None:
        """Record the blob (if new, reviving it if garbage collection condemned it) and link it
        into the repository (creating it if needed), in one transaction.

        ``settle`` runs inside that transaction while the blob is safe from garbage collection:
        it checks (or puts) the bytes and raises to abort the whole link.
        """

    def unlink(self, repository: str, digest: str, *, events: Sequence[Event] = ()) -> bool:
        """Remove a repository's link; the bytes stay for garbage collection."""

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        """Those of ``digests`` not linked into the repository, in the given order."""


class Uploads(Protocol):
    def create(self, upload_id: str, repository: str, owner: str | None = None) -> UploadRecord: ...

    def get(self, upload_id: str) -> UploadRecord | None: ...

    def set_offset(self, upload_id: str, expected: int, offset: int, hash_state: bytes | None = None) -> bool:
        """Move the acknowledged offset from ``expected`` to ``offset`` with the hash state at
        it (``None``: unknown); False if it had moved."""

    def mark_committing(self, upload_id: str, digest: str) -> bool:
        """Record the verified digest before the bytes move; False if the session is gone."""

    def complete(
        self,
        upload_id: str,
        digest: str,
        size: int,
        settle: Callable[[], None] | None = None,
        *,
        events: Sequence[Event] = (),
    ) -> bool:
        """In one transaction: record and link the blob (``settle`` as in :meth:`BlobLinks.link`:
        it moves the bytes into place), and end the session. False if the session is gone."""

    def delete(self, upload_id: str) -> bool: ...


class Manifests(Protocol):
    def get(self, repository: str, digest: str) -> ManifestRecord | None: ...

    def resolve_tag(self, repository: str, tag: str) -> ManifestRecord | None: ...

    def put(
        self,
        repository: str,
        manifest: NewManifest,
        tag: str | None,
        *,
        tag_immutable: bool = False,
        events: Callable[[str | None], Sequence[Event]] | None = None,
        change: TagChange | None = None,
        verify_references: bool = True,
    ) -> None:
        """In one transaction: store the manifest (if new), point ``tag`` at it, and write the
        events that ``events`` returns when called with the digest the tag pointed to before
        (``None``: a new tag, or no tag) -- what happened is known only inside the transaction.
        A move of the tag appends to its history who made it (``change``; unknown without it).

        With ``tag_immutable`` a tag that already points elsewhere is not moved: the whole
        transaction is refused with :class:`ImmutableTagError` (checked inside the transaction,
        so two racing pushes cannot both win). The ``manifest_refs`` of an index must be
        manifests of the repository, else :class:`MissingManifestsError`; they stay so until
        the index is deleted (see :meth:`delete`). ``verify_references=False`` skips both
        reference checks: the pull-through cache stores a manifest before its blobs arrive.
        """

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        """Those of ``digests`` that are not manifests of the repository."""

    def delete(
        self, repository: str, digest: str, *, events: Sequence[Event] = (), change: TagChange | None = None
    ) -> bool:
        """Delete a manifest and end every tag that points to it (each recorded in its history as
        ``change``, a ``delete`` by an unknown actor without it).

        A manifest that an index of the same repository lists is not deleted:
        :class:`ReferencedManifestError` names the indexes. Race-safe against a concurrent
        :meth:`put` of such an index: one of the two transactions sees the other's result.
        """

    def referrers(self, repository: str, subject: str, artifact_type: str | None) -> list[ManifestRecord]: ...


class Tags(Protocol):
    def list_names(self, repository: str, limit: int | None, last: str | None) -> list[str]:
        """Current tag names in case-insensitive lexical order, strictly after ``last``."""

    def list_state(self, repository: str) -> tuple[Any, ...] | None:
        """A value that changes whenever the repository's current tag names may have (``None``:
        no such repository): what a cached tag list is validated against, in one indexed read."""

    def delete(
        self, repository: str, tag: str, *, events: Sequence[Event] = (), change: TagChange | None = None
    ) -> bool:
        """End the tag's current lifetime (recorded in its history as ``change``); the manifest stays."""

    def history(self, repository: str, tag: str) -> list[TagRecord]:
        """Every lifetime of a tag, newest first."""

    def pointing_to(self, repository: str, digest: str) -> list[str]:
        """Current tags that name ``digest``."""


class Compartments(Protocol):
    def get(self, name: str) -> CompartmentRecord | None: ...

    def page(self, limit: int | None, last: str | None) -> list[CompartmentRecord]: ...

    def create(
        self, name: str, description: str, create_on_first_push: bool | None, *, events: Sequence[Event] = ()
    ) -> CompartmentRecord:
        """Raises :class:`AlreadyExistsError`."""

    def update(
        self, name: str, changes: dict[str, Any], *, events: Sequence[Event] = ()
    ) -> CompartmentRecord | None: ...

    def delete(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        """Raises :class:`NotEmptyError` while it holds repositories."""


class RegistryConfigStore(Protocol):
    def get(self) -> RegistryConfigRecord: ...

    def put(
        self, create_repository: bool, create_compartment: bool, *, events: Sequence[Event] = ()
    ) -> RegistryConfigRecord: ...


class RepositoryAdmin(Protocol):
    """Creating, configuring and deleting repositories (the control plane)."""

    def create(
        self,
        name: str,
        settings: RepositorySettings,
        created_by: str | None,
        *,
        create_compartment: bool,
        events: Sequence[Event] = (),
    ) -> RepositoryDetails:
        """Raises :class:`AlreadyExistsError`, or :class:`LookupError` for a missing compartment."""

    def update(self, name: str, changes: dict[str, Any], *, events: Sequence[Event] = ()) -> RepositoryDetails | None:
        """``None`` if the repository does not exist; changes no row (and records nothing) when
        ``changes`` names no setting."""

    def delete(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        """Remove the repository, its tags, manifests, links and uploads (blob bytes stay for GC)."""

    def details(self, name: str) -> RepositoryDetails | None: ...

    def search(self, where: RepositoryFilter, limit: int | None, last: str | None) -> list[RepositoryDetails]: ...

    def versions(self, name: str, limit: int | None, last: str | None) -> list[VersionRecord]: ...


class Garbage(Protocol):
    """What garbage collection needs (see ``sql_gc.py`` for the race it closes)."""

    def unreferenced_blobs(self, cutoff: datetime, limit: int, after: str = "") -> list[tuple[str, int]]: ...

    def condemn(self, digests: list[str], cutoff: datetime) -> list[str]: ...

    def condemn_orphans(self, sizes: dict[str, int]) -> list[str]: ...

    def condemned_blobs(self, limit: int) -> list[tuple[str, int]]: ...

    def purge(self, digests: list[str], remove_bytes: Callable[[str], None]) -> list[str]: ...

    def stale_uploads(self, cutoff: datetime) -> list[str]: ...

    def idle_uploads(self, cutoff: datetime) -> list[tuple[str, str | None]]: ...

    def delete_uploads(self, upload_ids: list[str]) -> None: ...

    def known_blobs(self, digests: list[str]) -> set[str]: ...

    def known_uploads(self, upload_ids: list[str]) -> set[str]: ...


class MetadataStore(Protocol):
    #: Whether a read is cheap enough to run on the event loop (a local SQLite file), or must be
    #: handed to a thread (a network database).
    reads_inline: bool

    @property
    def garbage(self) -> Garbage: ...

    @property
    def principals(self) -> Principals: ...

    @property
    def api_keys(self) -> ApiKeys: ...

    @property
    def policies(self) -> Policies: ...

    @property
    def login_throttle(self) -> LoginThrottle: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def secrets(self) -> Secrets: ...

    @property
    def compartments(self) -> Compartments: ...

    @property
    def registry_config(self) -> RegistryConfigStore: ...

    @property
    def repo_admin(self) -> RepositoryAdmin: ...

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
