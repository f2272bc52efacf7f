"""Typed manifests: OCI image manifest and index, Docker schema-2 manifest and manifest list.

:func:`parse_manifest` turns the exact bytes a client pushed into a :class:`ParsedManifest`
that says what the manifest needs from the registry (blobs, child manifests) and what the
referrers API needs from it (subject, artifact type, annotations). The bytes themselves are
stored untouched; this model is only read from them.

Field types are checked strictly, as the image spec declares them: a ``size`` is a JSON integer
within int64 (not ``"38"``, ``true``, ``38.0`` or ``1e30``, which lax parsing would take and
clients such as skopeo then fail to read), ``schemaVersion`` the integer 2, media types strings
of RFC 6838's grammar (the spec's own JSON schema pattern), annotations string-to-string maps.
Unknown fields are kept and ignored, as the spec requires.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError

INT64_MAX = 2**63 - 1

# The image spec's schema (defs-descriptor.json) for RFC 6838 type/subtype names.
MEDIA_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
MediaType = Annotated[str, StringConstraints(pattern=MEDIA_TYPE_PATTERN)]
# An empty artifactType is taken as none (Go clients without ``omitempty`` send ""; see referrers).
ArtifactType = Annotated[str, StringConstraints(pattern=f"^(?:|{MEDIA_TYPE_PATTERN[1:-1]})$")]

# Strict: no coercion from another JSON type (see the module docstring). Unknown fields allowed.
_STRICT = ConfigDict(extra="allow", frozen=True, strict=True)


class Platform(BaseModel):
    """The ``platform`` of an index entry: ``architecture`` and ``os`` are required."""

    model_config = _STRICT

    architecture: str
    os: str
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: list[str] | None = Field(default=None, alias="os.features")
    variant: str | None = None
    features: list[str] | None = None


class Descriptor(BaseModel):
    """An OCI content descriptor (``mediaType``, ``digest``, ``size`` and optional extras)."""

    model_config = _STRICT

    media_type: MediaType = Field(alias="mediaType")
    digest: str
    size: int = Field(ge=0, le=INT64_MAX)
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    data: str | None = None
    artifact_type: ArtifactType | None = Field(default=None, alias="artifactType")
    platform: Platform | None = None

    @pydantic.field_validator("digest")
    @classmethod
    def _valid_digest(cls, value: str) -> str:
        try:
            Digest.parse(value)
        except RegistryError as exc:
            raise ValueError(exc.message) from None
        return value

    @pydantic.field_validator("data")
    @classmethod
    def _valid_base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise ValueError("must be base64 (RFC 4648, section 4)") from None
        return value


class _ManifestBody(BaseModel):
    """The union of fields of the four supported manifest kinds."""

    model_config = _STRICT

    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: ArtifactType | None = Field(default=None, alias="artifactType")
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


_JSON_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a number with a fraction or exponent",
               list: "an array", dict: "an object", type(None): "null"}  # fmt: skip


def _problem(error: Any) -> str:
    """One validation error as ``field: what it must be, not what was sent``."""
    where = ".".join(str(p) for p in error["loc"]) or "body"
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return f"{where}: is required"
    if kind.startswith("json_"):
        return f"{where}: {message}"
    if kind == "string_pattern_mismatch":
        message = "must be a media type of the form 'type/subtype' (RFC 6838)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "must be a JSON object"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "less_than_equal" and where.endswith("size"):
        message = f"must fit in int64 (at most {INT64_MAX})"
    else:
        message = message.replace("Input should be", "must be")
    value = error.get("input")
    sent = _JSON_TYPES.get(type(value), "a value")
    if isinstance(value, str):
        sent += f" {value[:40]!r}"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        sent += f" {str(value)[:40]}"
    return f"{where}: {message}, not {sent}"


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a pushed manifest and return its parsed form, or raise ``MANIFEST_INVALID``.

    The media type comes from the manifest's ``mediaType`` field, else the request's
    ``Content-Type``; when both are given they must agree, as the spec requires of clients.
    """
    try:
        raw = _ManifestBody.model_validate_json(body)
    except pydantic.ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()[:10]]
        raise _invalid(
            "manifest is not valid JSON of a supported schema: " + "; ".join(problems),
            detail={"fields": [".".join(str(p) for p in err["loc"]) for err in exc.errors()[:10]]},
        ) from None
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
        raise _invalid(f"schemaVersion must be 2, not {raw.schema_version}", detail={"fields": ["schemaVersion"]})
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
