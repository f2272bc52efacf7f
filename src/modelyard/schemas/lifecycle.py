"""Wire models of retention, quotas, usage and maintenance runs (``/api/v1``), shared by the
server and ``modelyard.client``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, model_validator

from modelyard.schemas.admin import TagPattern

MAX_DAYS = 36500.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _non_null(schema: dict[str, JsonValue]) -> WithJsonSchema:
    """A field that may be left out but, when sent, is a value (what the OpenAPI document says)."""
    return WithJsonSchema(schema)


class RetentionPolicyBody(_Model):
    """Keep a version if any rule keeps it; the rest of the repository's versions go. Give
    ``keep_last`` or ``keep_days`` (or both)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"anyOf": [{"required": ["keep_last"]}, {"required": ["keep_days"]}]}
    )

    keep_last: Annotated[int | None, _non_null({"type": "integer", "minimum": 1, "maximum": 1_000_000})] = Field(
        None, ge=1, le=1_000_000, description="Keep the N newest tagged versions (by push time)."
    )
    keep_days: Annotated[float | None, _non_null({"type": "number", "minimum": 0, "maximum": MAX_DAYS})] = Field(
        None, ge=0, le=MAX_DAYS, description="Keep versions pushed or pulled within D days."
    )
    keep_tags: list[TagPattern] = Field(
        default_factory=list, max_length=100, description="Always keep versions with a tag matching one of these globs."
    )
    alias_window_days: float = Field(
        30.0, ge=0, le=MAX_DAYS,
        description="Keep what an alias (a mutable tag) points to, and pointed to within this many days.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _a_rule(self) -> RetentionPolicyBody:
        if self.keep_last is None and self.keep_days is None:
            raise ValueError("give keep_last or keep_days (or both)")
        return self


class RetentionPolicy(_Model):
    scope: str
    keep_last: int | None
    keep_days: float | None
    keep_tags: list[str]
    alias_window_days: float
    updated_at: datetime | None = None
    updated_by: str | None = None


class QuotaBody(_Model):
    limit_bytes: int = Field(ge=0, le=2**62, description="Stored bytes allowed, counted as GET /api/v1/usage says.")


class Quota(QuotaBody):
    scope: str
    usage_bytes: int
    updated_at: datetime | None = None
    updated_by: str | None = None


class RetentionTarget(_Model):
    """One repository or one compartment."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["repository"]}, {"required": ["compartment"]}]}
    )

    repository: Annotated[str | None, _non_null({"type": "string", "minLength": 1, "maxLength": 255})] = None
    compartment: Annotated[str | None, _non_null({"type": "string", "minLength": 1, "maxLength": 255})] = None

    @model_validator(mode="after")
    def _one(self) -> RetentionTarget:
        if (self.repository is None) == (self.compartment is None):
            raise ValueError("give exactly one of repository and compartment")
        return self


class PlannedVersion(_Model):
    repository: str
    digest: str
    tags: list[str]
    size: int
    pushed_at: datetime
    last_pulled_at: datetime | None
    action: Literal["delete", "keep"]
    reasons: list[str]


class RepositoryRetention(_Model):
    repository: str
    policy_scope: str
    delete_count: int
    keep_count: int


class RetentionPlan(_Model):
    scope: str
    at: datetime
    delete_count: int
    freed_bytes: int = Field(description="Unique blob bytes the deletions free at the next gc (shared ones excluded).")
    manifest_bytes: int
    repositories: list[RepositoryRetention]
    versions: list[PlannedVersion]


class RetentionRun(_Model):
    scope: str
    run_id: int | None
    deleted: list[str]
    skipped: list[str] = Field(description="Planned deletions that changed meanwhile (re-tagged) and stayed.")
    freed_bytes: int


class UsageItem(_Model):
    name: str
    charged_bytes: int
    logical_bytes: int
    exclusive_bytes: int
    quota_bytes: int | None


class Usage(_Model):
    counting: str
    compartments: list[UsageItem]
    repositories: list[UsageItem]


class MaintenanceRun(_Model):
    id: int
    kind: str
    trigger: str
    actor: str
    scope: str | None
    started_at: datetime
    finished_at: datetime
    removed: int
    freed_bytes: int
    detail: dict[str, JsonValue]
    error: str | None


class MaintenanceRunPage(_Model):
    items: list[MaintenanceRun]
    next_page: str | None
