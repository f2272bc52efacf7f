"""Lineage and diff of versions: plain records (no I/O) shared by ``services/models/lineage.py``,
``services/models/diff.py``, the lineage index in SQL and the API.

Lineage has two kinds of edge, both read from what clients already write:

- ``base``: a manifest's standard OCI annotations ``org.opencontainers.image.base.name`` and
  ``org.opencontainers.image.base.digest`` (``modelyard push --base`` writes both; docker
  buildx and others write them for images). The name is an image reference, possibly with a
  registry host and a tag (``registry.example.com/acme/llm:v1``); the registry keeps the
  repository path (``acme/llm``) and looks it up among its own repositories. A base digest
  without a name means the same repository.
- ``subject``: a manifest's ``subject`` descriptor (signatures, SBOMs, eval reports attached by
  oras, cosign, notation ...), always in the manifest's own repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelyard.domain.models import ModelFacts
from modelyard.domain.reference import NAME_MAX_LENGTH, NAME_PATTERN

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"

Relation = Literal["base", "subject"]

_NAME = re.compile(NAME_PATTERN)
_HOST = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True, slots=True)
class BaseRef:
    """Where a manifest says it was derived from: a repository of this registry (its path, after
    dropping a registry host and a tag) and a manifest digest; ``name`` is the annotation as
    written (``None`` when only the digest was given)."""

    repository: str
    digest: str
    name: str | None


def repository_path(reference: str) -> str | None:
    """``localhost:5000/acme/llm:v1@sha256:…`` -> ``acme/llm``; ``docker.io/library/alpine`` ->
    ``library/alpine``; ``None`` when what remains is no valid repository name.

    The first component is a registry host when it has a ``.`` or a ``:`` or is ``localhost``
    (the rule docker uses to tell ``host/repo`` from ``org/repo``)."""
    name = reference.strip().split("@", 1)[0]
    components = name.split("/")
    first = components[0]
    if len(components) > 1 and _HOST.fullmatch(first) and ("." in first or ":" in first or first == "localhost"):
        components = components[1:]
    if components and ":" in components[-1]:
        components[-1] = components[-1].split(":", 1)[0]
    path = "/".join(components)
    if not path or len(path) > NAME_MAX_LENGTH or not _NAME.fullmatch(path):
        return None
    return path


def base_of(repository: str, annotations: dict[str, str] | None) -> BaseRef | None:
    """The base a manifest of ``repository`` declares in its annotations, if any (a malformed
    digest, or a name that is no repository path, declares none)."""
    if not annotations:
        return None
    digest = str(annotations.get(BASE_DIGEST) or "").strip()
    if not digest or len(digest) > 200 or not _DIGEST.fullmatch(digest):
        return None
    raw = annotations.get(BASE_NAME)
    name = str(raw).strip()[:512] if raw and str(raw).strip() else None
    if name is None:
        return BaseRef(repository, digest, None)
    path = repository_path(name)
    if path is None:
        return None
    return BaseRef(path, digest, name)


@dataclass(frozen=True, slots=True)
class LineageNode:
    """One manifest in a lineage graph. ``present`` is false for a base the caller may read
    that is no longer (or never was) in the registry: the edge is known, the manifest is gone."""

    repository: str
    digest: str
    present: bool = True
    media_type: str | None = None
    artifact_type: str | None = None
    created_at: datetime | None = None
    tags: tuple[str, ...] = ()
    # What the model index understood of the version, when it was indexed.
    model: ModelFacts | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.repository, self.digest)


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """``child`` derives from (``base``) or refers to (``subject``) ``parent``."""

    child: tuple[str, str]
    parent: tuple[str, str]
    relation: Relation


@dataclass(frozen=True, slots=True)
class Lineage:
    root: LineageNode
    ancestors: tuple[LineageNode, ...]
    descendants: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    # True when a bound (depth or node count) stopped the walk before the graph's end.
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class FileChange:
    """A path present in both versions with different contents."""

    path: str
    old_size: int
    new_size: int
    old_digest: str
    new_digest: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed from version ``a`` to version ``b`` (sizes in bytes).

    ``shared_bytes`` counts each distinct blob both versions hold once (a file that moved to a
    new path, or two paths with the same bytes, share their blob); ``changed_bytes`` is what a
    client holding ``a`` must fetch to have ``b``: the sizes of ``b``'s blobs that ``a`` lacks.
    """

    a_repository: str
    a_digest: str
    b_repository: str
    b_digest: str
    added: tuple[tuple[str, int, str], ...]  # (path, size, digest) only in b
    removed: tuple[tuple[str, int, str], ...]  # only in a
    changed: tuple[FileChange, ...]
    unchanged: int
    metadata: tuple[FieldChange, ...]
    annotations: tuple[FieldChange, ...]
    a_size: int
    b_size: int
    shared_bytes: int
    changed_bytes: int
