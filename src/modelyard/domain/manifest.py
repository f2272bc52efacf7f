"""Typed manifests: OCI image manifest and index, Docker schema-2 manifest and manifest list.

:func:`parse_manifest` turns the exact bytes a client pushed into a :class:`ParsedManifest`
that says what the manifest needs from the registry (blobs, child manifests) and what the
referrers API needs from it (subject, artifact type, annotations). The bytes themselves are
stored untouched; this model is only read from them.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError


class Descriptor(BaseModel):
    """An OCI content descriptor (``mediaType``, ``digest``, ``size`` and optional extras)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    media_type: str = Field(alias="mediaType", min_length=1)
    digest: str
    size: int = Field(ge=0)
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")
    platform: dict[str, Any] | None = None

    @pydantic.field_validator("digest")
    @classmethod
    def _valid_digest(cls, value: str) -> str:
        try:
            Digest.parse(value)
        except RegistryError as exc:
            raise ValueError(exc.message) from None
        return value


class _ManifestBody(BaseModel):
    """The union of fields of the four supported manifest kinds."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: Descriptor | None = None
    layers: list[Descriptor] | None = None
    manifests: list[Descriptor] | None = None
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


class ParsedManifest(BaseModel):
    """What the registry needs to know about a pushed manifest."""

    model_config = ConfigDict(frozen=True)

    media_type: str
    artifact_type: str | None
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    annotations: dict[str, str] | None

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES

    def required_blobs(self) -> list[str]:
        """Digests of blobs that must exist in the repository before this manifest can.

        Foreign layers (descriptors with ``urls``, e.g. Windows base layers) live elsewhere
        and are not required.
        """
        digests: list[str] = []
        if self.config is not None:
            digests.append(self.config.digest)
        digests.extend(layer.digest for layer in self.layers if not layer.urls)
        return list(dict.fromkeys(digests))

    def required_manifests(self) -> list[str]:
        """Digests of child manifests an index needs in the repository."""
        return list(dict.fromkeys(child.digest for child in self.children))

    def referrer_artifact_type(self) -> str | None:
        """The ``artifactType`` a referrers listing shows for this manifest.

        Per the spec: the manifest's ``artifactType``, else (image manifests only) the config
        descriptor's media type; an index without one has none.
        """
        if self.artifact_type:
            return self.artifact_type
        if not self.is_index and self.config is not None:
            return self.config.media_type
        return None


def _invalid(message: str, detail: Any = None) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, message, detail=detail)


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a pushed manifest and return its parsed form, or raise ``MANIFEST_INVALID``.

    The media type comes from the manifest's ``mediaType`` field, else the request's
    ``Content-Type``; when both are given they must agree, as the spec requires of clients.
    """
    try:
        raw = _ManifestBody.model_validate_json(body)
    except pydantic.ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:10]]
        raise _invalid("manifest is not valid JSON of a supported schema: " + "; ".join(problems)) from None
    header_type = mediatypes.strip_parameters(content_type) if content_type else None
    if header_type in ("", "application/octet-stream", "application/json"):
        header_type = None
    media_type = raw.media_type or header_type
    if raw.media_type and header_type and raw.media_type != header_type:
        raise _invalid(f"Content-Type {header_type!r} does not match the manifest's mediaType {raw.media_type!r}")
    if media_type is None:
        # An OCI manifest may omit mediaType; infer it from its shape.
        media_type = mediatypes.OCI_INDEX if raw.manifests is not None else mediatypes.OCI_MANIFEST
    if media_type not in mediatypes.MANIFESTS:
        raise _invalid(
            f"unsupported manifest media type {media_type!r}; supported: " + ", ".join(sorted(mediatypes.MANIFESTS))
        )
    if raw.schema_version != 2:
        raise _invalid(f"schemaVersion must be 2, not {raw.schema_version}")
    if media_type in mediatypes.INDEXES:
        if raw.manifests is None:
            raise _invalid("an index must have a 'manifests' list")
        return ParsedManifest(
            media_type=media_type,
            artifact_type=raw.artifact_type,
            config=None,
            layers=(),
            children=tuple(raw.manifests),
            subject=raw.subject,
            annotations=raw.annotations,
        )
    if raw.config is None:
        raise _invalid("an image manifest must have a 'config' descriptor")
    if raw.layers is None:
        raise _invalid("an image manifest must have a 'layers' list (it may be empty)")
    return ParsedManifest(
        media_type=media_type,
        artifact_type=raw.artifact_type,
        config=raw.config,
        layers=tuple(raw.layers),
        children=(),
        subject=raw.subject,
        annotations=raw.annotations,
    )
