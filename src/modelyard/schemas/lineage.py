"""The admin API's models of a version's lineage and of the diff of two versions.

Shared by the server and ``modelyard.client`` like ``schemas/models.py``. A node is a manifest
(``repository`` + ``digest``); an edge says ``child`` derives from (``base``: the OCI base
annotations) or refers to (``subject``: a referrer) ``parent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from modelyard.schemas.models import ModelSummary


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineageNode(_Model):
    repository: str
    digest: str
    present: bool = Field(
        description="False for a base the caller may read that is not (or no longer) in the registry."
    )
    media_type: str | None = None
    artifact_type: str | None = None
    tags: list[str] = Field(default_factory=list)
    time_created: datetime | None = None
    model: ModelSummary | None = Field(None, description="What the registry understood of the version, if indexed.")


class LineageEdge(_Model):
    child: str = Field(description="REPOSITORY@DIGEST of the derived manifest.")
    parent: str = Field(description="REPOSITORY@DIGEST of the manifest it derives from or refers to.")
    relation: Literal["base", "subject"]


class Lineage(_Model):
    """Versions the caller may read that ``version`` derives from (``ancestors``, nearest first)
    and that derive from it or refer to it (``descendants``), across repositories."""

    version: LineageNode
    ancestors: list[LineageNode]
    descendants: list[LineageNode]
    edges: list[LineageEdge]
    truncated: bool = Field(description="True when the walk stopped at its depth or size bound.")


class FileEntry(_Model):
    path: str
    size: int
    digest: str


class FileChange(_Model):
    path: str
    old_size: int
    new_size: int
    old_digest: str
    new_digest: str


class FieldChange(_Model):
    field: str
    old: JsonValue
    new: JsonValue


class VersionRef(_Model):
    repository: str
    digest: str
    size: int = Field(description="Bytes of the version's files (each blob once).")


class VersionDiff(_Model):
    """From version ``a`` to version ``b``."""

    a: VersionRef
    b: VersionRef
    added: list[FileEntry] = Field(description="Files only in b.")
    removed: list[FileEntry] = Field(description="Files only in a.")
    changed: list[FileChange] = Field(description="Paths in both whose bytes differ.")
    unchanged: int = Field(description="How many paths are in both with the same bytes.")
    metadata: list[FieldChange] = Field(description="Model facts that differ (format, parameters, license ...).")
    annotations: list[FieldChange] = Field(description="Manifest annotations that differ.")
    shared_bytes: int = Field(description="Bytes of the blobs both versions hold (each once).")
    changed_bytes: int = Field(description="Bytes of b's blobs that a lacks: what a holder of a fetches to get b.")
