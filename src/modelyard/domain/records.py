"""Records of the registry that services, stores and the API share: repositories, compartments,
uploads, manifests, tags, versions, and the refusals a store reports.

Plain frozen dataclasses and exceptions, no I/O: the metadata stores build them, the services
pass them on, the API renders them. They live here rather than in ``metadata/`` so that no
layer above the stores has to import a store module to name what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelyard.domain.aliases import PromotionGate, ProtectedAlias


@dataclass(frozen=True, slots=True)
class RepositoryRecord:
    """A repository as the push and pull paths need it: identity plus access and tag policy."""

    id: int
    name: str
    created_at: datetime
    is_public: bool = False
    is_immutable: bool = False
    immutable_tag_patterns: tuple[str, ...] = ()
    mutable_tag_exclusions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RepositorySettings:
    """The writable settings of a repository (create and update)."""

    description: str = ""
    is_public: bool = False
    is_immutable: bool = False
    immutable_tag_patterns: tuple[str, ...] = ()
    mutable_tag_exclusions: tuple[str, ...] = ()
    readme_content: str = ""
    readme_format: str = "TEXT_MARKDOWN"
    labels: dict[str, str] = field(default_factory=dict)
    protected_aliases: tuple[ProtectedAlias, ...] = ()
    promotion_gates: tuple[PromotionGate, ...] = ()


@dataclass(frozen=True, slots=True)
class RepositoryDetails:
    """The full control-plane view of a repository, with statistics computed on read."""

    id: int
    name: str
    compartment: str | None
    display_name: str
    settings: RepositorySettings
    created_by: str | None
    lifecycle_state: str
    created_at: datetime
    time_last_pushed: datetime | None
    image_count: int
    layer_count: int
    layers_size_in_bytes: int


@dataclass(frozen=True, slots=True)
class RepositoryFilter:
    compartment: str | None = None
    is_public: bool | None = None
    name_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A current tag and the manifest it names."""

    tag: str
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str] | None
    created_at: datetime
    tagged_at: datetime


@dataclass(frozen=True, slots=True)
class CompartmentRecord:
    id: int
    name: str
    description: str
    create_repository_on_first_push: bool | None
    created_at: datetime
    updated_at: datetime
    repository_count: int = 0


@dataclass(frozen=True, slots=True)
class RegistryConfigRecord:
    create_repository_on_first_push: bool
    create_compartment_on_first_push: bool
    updated_at: datetime | None


class ImmutableTagError(Exception):
    """A push would move an immutable tag; carries the digest the tag points to."""

    def __init__(self, tag: str, current_digest: str) -> None:
        super().__init__(f"{tag} -> {current_digest}")
        self.tag = tag
        self.current_digest = current_digest


class MissingBlobsError(Exception):
    """A manifest's blobs are not (or no longer) linked into its repository."""

    def __init__(self, digests: list[str]) -> None:
        super().__init__(", ".join(digests))
        self.digests = digests


class MissingManifestsError(Exception):
    """An index's child manifests are not (or no longer) in its repository."""

    def __init__(self, digests: list[str]) -> None:
        super().__init__(", ".join(digests))
        self.digests = digests


class ReferencedManifestError(Exception):
    """A manifest cannot be deleted while indexes of its repository list it; carries their digests."""

    def __init__(self, digest: str, indexes: list[str]) -> None:
        super().__init__(f"{digest} is listed by {', '.join(indexes)}")
        self.digest = digest
        self.indexes = indexes


class AlreadyExistsError(Exception):
    """A create named something that exists."""


class NotEmptyError(Exception):
    """A delete of something that still holds children."""


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """An upload session: which repository it belongs to and how many bytes are acknowledged."""

    id: str
    repository: str
    offset: int
    created_at: datetime
    updated_at: datetime
    owner: str | None = None
    committing_digest: str | None = None
    # The SHA-256 state after ``offset`` bytes (storage/hashstate.py), when the worker had one.
    hash_state: bytes | None = None


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
