"""Wire models of aliases, tag history and alias rules (``/api/v1/repositories/{name}/-/aliases``
and ``…/-/tags/{tag}/history``), shared by the server and ``modelyard.client``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from modelyard.schemas.admin import PromotionGate, ProtectedAlias

__all__ = [
    "Alias",
    "AliasList",
    "AliasMove",
    "AliasRollback",
    "HistoryEntry",
    "HistoryPage",
    "PromotionGate",
    "ProtectedAlias",
]

# The digests the registry stores (sha256, sha512) and the OCI tag grammar.
DIGEST_PATTERN = r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
TARGET_PATTERN = r"^([A-Za-z0-9_][A-Za-z0-9._-]{0,127}|sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
# ISO 8601 with a date that exists in every year (the server itself takes any valid time).
TIME_PATTERN = (
    r"^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
    r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
)
Target = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TARGET_PATTERN)]
Reason = Annotated[str, StringConstraints(max_length=1024)]
DigestText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=DIGEST_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Alias(_Model):
    """A mutable tag and where it points."""

    name: str
    digest: str
    versions: list[str] = Field(description="The immutable (version) tags pointing at the same manifest.")
    protected: bool = Field(description="Whether a protected-alias rule of the repository covers it.")
    moved_at: datetime
    moved_by: str | None = Field(description="Who moved it last (user:…, serviceAccount:…); null if unknown.")


class AliasList(_Model):
    items: list[Alias]


class AliasMove(_Model):
    target: Target = Field(description="A version tag (v1.0) or a digest of the repository.")
    expected_digest: DigestText | None = Field(
        None, description="Where you saw the alias; 409 if it points elsewhere (or does not exist) now."
    )
    reason: Reason | None = Field(None, description="Why; kept in the alias's history.")


class AliasRollback(_Model):
    to: Target | None = Field(
        None, description="A version tag or digest; null: the most recent earlier target still present."
    )
    reason: Reason | None = None
    expected_digest: DigestText | None = Field(None, description="Where you saw the alias; 409 if it moved since.")


class HistoryEntry(_Model):
    tag: str
    from_digest: str | None = Field(description="null: the tag was new.")
    to_digest: str | None = Field(description="null: the tag was deleted (or its manifest).")
    actor: str | None = Field(description="user:…, serviceAccount:…, anonymous; null if unknown.")
    at: datetime
    how: Literal["push", "api", "rollback", "retention", "delete"]
    reason: str | None
    manifest_present: bool = Field(description="Whether to_digest is still stored in the repository.")


class HistoryPage(_Model):
    items: list[HistoryEntry] = Field(description="Newest first; with ?at=, the one entry in force then (or none).")
    next: str | None = Field(description="Pass as ?page= for older entries; null on the last page.")
