"""The admin API's request and response models (JSON in snake_case).

They are shared by the server (validation, OpenAPI) and by ``modelyard.client`` (typed
results), so both ends agree on one definition.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, WithJsonSchema, field_validator

from modelyard.domain.reference import COMPONENT_PATTERN, NAME_PATTERN
from modelyard.schemas.models import ModelSummary

ReadmeFormat = Literal["TEXT_MARKDOWN", "TEXT_PLAIN"]
TagPattern = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.*?\[\]!-]+$")]
LABEL_KEY_PATTERN = r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$"
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
MAX_LABELS = 64
# pydantic describes a dict with constrained keys as ``patternProperties``, which would let any
# other key through with any value; publish what is enforced instead.
Labels = Annotated[
    dict[LabelKey, LabelValue],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_LABELS,
            "propertyNames": {"minLength": 1, "maxLength": 63, "pattern": LABEL_KEY_PATTERN},
            "additionalProperties": {"type": "string", "maxLength": 256},
        }
    ),
]
README_MAX_BYTES = 1024 * 1024
# What the OpenAPI document says of names; the handlers check the same grammar with friendlier messages.
_COMPONENT_SCHEMA: dict[str, JsonValue] = {"pattern": f"^{COMPONENT_PATTERN}$"}
_BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
# The grammars ``services/identity.py`` and ``policy/authorizer.py`` enforce, for the OpenAPI
# document only (the client imports this module and stays free of the server's modules);
# tests/api/admin/test_openapi.py checks that they agree.
USER_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
SERVICE_ACCOUNT_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}(@[a-z0-9][a-z0-9._-]{0,63})?$"
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s\x00-\x1f\x7f-\x9f]{1,190}$"
MEMBER_PATTERN = r"^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group):[^\s:\x00-\x1f\x7f-\x9f]{1,255})$"
ROLE_NAMES: list[JsonValue] = ["reader", "pusher", "writer", "repoAdmin", "admin"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Readme(_Model):
    """A repository README: ``content`` is base64 (as in Oracle's API), ``format`` its markup."""

    content: str = Field(
        "",
        description="Base64 of the UTF-8 README text.",
        json_schema_extra={
            "contentEncoding": "base64",
            "contentMediaType": "text/plain; charset=utf-8",
            "pattern": _BASE64,
            "maxLength": 4 * -(-README_MAX_BYTES // 3),
        },
    )
    format: ReadmeFormat = "TEXT_MARKDOWN"

    @field_validator("content")
    @classmethod
    def _base64_utf8(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("content must be base64 (the CLI encodes plain text for you)") from None
        if len(raw) > README_MAX_BYTES:
            raise ValueError(f"README is {len(raw)} bytes; the limit is {README_MAX_BYTES}")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("README must be UTF-8 text") from None
        return value

    def text(self) -> str:
        return base64.b64decode(self.content).decode("utf-8")

    @classmethod
    def from_text(cls, text: str, format: ReadmeFormat = "TEXT_MARKDOWN") -> Readme:
        return cls(content=base64.b64encode(text.encode()).decode(), format=format)


class CompartmentCreate(_Model):
    name: str = Field(
        description="One path component: lowercase letters, digits and . _ -.",
        max_length=255,
        json_schema_extra=_COMPONENT_SCHEMA,
    )
    description: str = Field("", max_length=4096)
    is_repository_created_on_first_push: bool | None = Field(
        None, description="null inherits the registry-level default."
    )


class CompartmentUpdate(_Model):
    description: str | None = Field(None, max_length=4096)


class Compartment(_Model):
    id: str
    name: str
    description: str
    repository_count: int
    time_created: datetime
    time_updated: datetime


class CompartmentConfiguration(_Model):
    """A compartment's configuration (Oracle's ``ContainerConfiguration``)."""

    is_repository_created_on_first_push: bool | None = Field(
        None, description="Create repositories on first push; null inherits the registry default."
    )


class CompartmentConfigurationView(CompartmentConfiguration):
    compartment_id: str
    effective_is_repository_created_on_first_push: bool = Field(
        description="The value in force, after inheriting the registry default."
    )


class RegistryConfiguration(_Model):
    is_repository_created_on_first_push: bool = Field(
        description="Default for compartments that don't set it, and the rule for root-compartment repositories."
    )
    is_compartment_created_on_first_push: bool = Field(
        description="Whether a push to a compartment that does not exist creates it."
    )


# -- alias rules (services/aliases.py) ------------------------------------------------------


class ProtectedAlias(_Model):
    """Aliases matching ``alias`` may be written only by the named roles or members."""

    alias: TagPattern = Field(description="A tag glob, e.g. 'prod' or 'release-*'.")
    roles: list[str] = Field(
        default_factory=list,
        max_length=10,
        json_schema_extra={"items": {"type": "string", "enum": ROLE_NAMES}},
        description="Roles (bound on the repository or above) that may move it; a stronger role counts too.",
    )
    members: list[str] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"items": {"type": "string", "pattern": MEMBER_PATTERN}},
        description="Members that may move it (user:…, serviceAccount:…, group:…).",
    )

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in ROLE_NAMES]
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles: {', '.join(str(r) for r in ROLE_NAMES)}")
        return value

    @field_validator("members")
    @classmethod
    def _valid_members(cls, value: list[str]) -> list[str]:
        for member in value:
            if not re.fullmatch(MEMBER_PATTERN, member):
                raise ValueError(f"invalid member {member!r}: use user:EMAIL, serviceAccount:NAME or group:NAME")
        return value


class PromotionGate(_Model):
    """Aliases matching ``alias`` may point only at manifests that passed this gate."""

    alias: TagPattern
    required_referrer_types: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] = Field(
        default_factory=list,
        max_length=20,
        description="Artifact types the manifest needs a referrer of, e.g. application/vnd.modelyard.eval.v1+json.",
    )
    require_alias_first: str | None = Field(
        None, max_length=128, description="An alias (e.g. staging) that must have pointed at the manifest before."
    )


class _RepositoryFields(_Model):
    description: str = Field("", max_length=4096)
    is_public: bool = Field(False, description="Readable by anyone, including anonymous clients.")
    is_immutable: bool = Field(False, description="Every tag, once pushed, can never move or be deleted.")
    immutable_tag_patterns: list[TagPattern] = Field(
        default_factory=list, max_length=50, description="Globs of tags that are immutable (e.g. 'v*')."
    )
    mutable_tag_exclusions: list[TagPattern] = Field(
        default_factory=list, max_length=50, description="Globs of tags that stay mutable (e.g. 'latest')."
    )
    readme: Readme | None = None
    labels: Labels = Field(default_factory=dict, max_length=MAX_LABELS)
    protected_aliases: list[ProtectedAlias] = Field(
        default_factory=list, max_length=50, description="Aliases only some roles or members may move."
    )
    promotion_gates: list[PromotionGate] = Field(
        default_factory=list, max_length=50, description="What a manifest needs before an alias may point at it."
    )


class RepositoryCreate(_RepositoryFields):
    # A root-compartment repository (no compartment_id) is a single path component.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "anyOf": [
                    {"not": {"required": ["compartment_id"]}},
                    {"properties": {"compartment_id": {"type": "null"}}, "required": ["compartment_id"]},
                ]
            },
            "then": {"properties": {"display_name": {"pattern": f"^{COMPONENT_PATTERN}$"}}},
        }
    )
    compartment_id: str | None = Field(
        None,
        description="The compartment (first path component); null for the root compartment.",
        json_schema_extra=_COMPONENT_SCHEMA,
    )
    display_name: str = Field(
        description="The repository's path inside its compartment; may contain '/'. Lowercase, as OCI names are.",
        min_length=1,
        max_length=255,
        json_schema_extra={"pattern": NAME_PATTERN},
    )


class RepositoryUpdate(_Model):
    """Fields to change; absent fields keep their value."""

    description: str | None = Field(None, max_length=4096)
    is_public: bool | None = None
    is_immutable: bool | None = None
    immutable_tag_patterns: list[TagPattern] | None = Field(None, max_length=50)
    mutable_tag_exclusions: list[TagPattern] | None = Field(None, max_length=50)
    readme: Readme | None = None
    labels: Labels | None = Field(None, max_length=MAX_LABELS)
    protected_aliases: list[ProtectedAlias] | None = Field(None, max_length=50)
    promotion_gates: list[PromotionGate] | None = Field(None, max_length=50)


class Repository(_Model):
    id: str
    name: str = Field(description="The full path: compartment/display_name.")
    compartment_id: str | None
    display_name: str
    url: str = Field(description="What `docker push` takes: host:port/name.")
    description: str
    is_public: bool
    is_immutable: bool
    immutable_tag_patterns: list[str]
    mutable_tag_exclusions: list[str]
    readme: Readme
    labels: dict[str, str]
    protected_aliases: list[ProtectedAlias] = Field(default_factory=list)
    promotion_gates: list[PromotionGate] = Field(default_factory=list)
    image_count: int
    layer_count: int
    layers_size_in_bytes: int
    time_created: datetime
    time_last_pushed: datetime | None
    created_by: str | None
    lifecycle_state: Literal["AVAILABLE", "DELETING", "DELETED"]


class Version(_Model):
    """A tag of a repository and the manifest it names."""

    tag: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: dict[str, str]
    time_created: datetime
    time_tagged: datetime
    immutable: bool
    model: ModelSummary | None = Field(
        None, description="What the registry understood of the version's model (null: not indexed yet)."
    )


class CompartmentPage(_Model):
    items: list[Compartment]
    next_page: str | None = Field(description="Pass as ?page= for the next page; null on the last.")


class RepositoryPage(_Model):
    items: list[Repository]
    next_page: str | None


class VersionPage(_Model):
    items: list[Version]
    next_page: str | None


class ErrorItem(BaseModel):
    code: str
    message: str
    detail: object | None = None


class ErrorBody(BaseModel):
    errors: list[ErrorItem]


# -- IAM ------------------------------------------------------------------------------------


class BindingCondition(_Model):
    """Limits a binding to some tags: its members may push (and move) only tags matching one of
    ``tags``; pulling, uploading blobs and pushing by digest are not limited."""

    tags: list[TagPattern] = Field(min_length=1, max_length=50, description="Tag globs, e.g. 'build-*'.")


class BindingModel(_Model):
    role: str = Field(description="reader, pusher, writer, repoAdmin or admin.", json_schema_extra={"enum": ROLE_NAMES})
    members: list[str] = Field(
        min_length=1,
        description="user:EMAIL|NAME, serviceAccount:NAME, group:NAME, allUsers, allAuthenticatedUsers.",
        json_schema_extra={"items": {"type": "string", "pattern": MEMBER_PATTERN}},
    )
    condition: BindingCondition | None = Field(
        None,
        description="Limit the binding to tags matching these globs (absent: unconditional).",
        exclude_if=lambda value: value is None,
    )


class Policy(_Model):
    """An IAM policy (as GCP's get/setIamPolicy): send back the etag you read to replace it."""

    bindings: list[BindingModel] = Field(default_factory=list, max_length=200)
    etag: str | None = Field(None, description="The etag last read; required to replace an existing policy.")


# -- principals -----------------------------------------------------------------------------


class UserCreate(_Model):
    name: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": USER_NAME_PATTERN})
    email: str = Field(min_length=3, max_length=255, json_schema_extra={"pattern": EMAIL_PATTERN})
    password: str = Field(min_length=8, max_length=1024)


class User(_Model):
    name: str
    email: str
    member: str = Field(description="How IAM bindings name this user.")
    groups: list[str]
    disabled: bool
    time_created: datetime


class UserList(_Model):
    items: list[User]


class PasswordChange(_Model):
    password: str = Field(min_length=8, max_length=1024, description="The new password.")
    current_password: str | None = Field(
        None,
        max_length=1024,
        description="Required to change your own password; an administrator resetting another user's omits it.",
    )


class ServiceAccountCreate(_Model):
    name: str = Field(
        min_length=1,
        max_length=129,
        description="e.g. ci-bot@acme",
        json_schema_extra={"pattern": SERVICE_ACCOUNT_NAME_PATTERN},
    )
    description: str = Field("", max_length=4096)


class ServiceAccount(_Model):
    name: str
    description: str
    member: str
    disabled: bool
    time_created: datetime


class ServiceAccountList(_Model):
    items: list[ServiceAccount]


class ApiKeyCreate(_Model):
    description: str = Field("", max_length=1024)
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="null: never expires.")


class ApiKey(_Model):
    id: str
    principal: str
    description: str
    time_created: datetime
    time_expires: datetime | None
    time_revoked: datetime | None
    time_last_used: datetime | None


class NewApiKey(ApiKey):
    secret: str = Field(description="The key itself, shown only now: use it as the password of docker login.")


class ApiKeyList(_Model):
    items: list[ApiKey]


class GroupCreate(_Model):
    name: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": USER_NAME_PATTERN})


class GroupMembers(_Model):
    members: list[str] = Field(
        max_length=10_000,
        description="Names of existing users.",
        json_schema_extra={"items": {"type": "string", "pattern": USER_NAME_PATTERN}},
    )


class Group(_Model):
    name: str
    member: str
    members: list[str]
    time_created: datetime


class GroupList(_Model):
    items: list[Group]


class Me(_Model):
    subject: str
    kind: str
    name: str
    email: str | None
    groups: list[str]
    auth_enabled: bool


# -- audit ----------------------------------------------------------------------------------


class AuditEvent(_Model):
    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    client_ip: str
    detail: dict[str, object] | None


class AuditPage(_Model):
    items: list[AuditEvent]
    next_page: str | None
