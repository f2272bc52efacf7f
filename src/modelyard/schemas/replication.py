"""Wire models of the replication endpoints (``/api/v1/replication``), shared by the server and
the clients. The server checks the rest (``domain/replication.py``): a URL's host and port
parse, a pattern is a glob, a rule runs on push or on a schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NAME_PATTERN)]
# The registry's root: scheme, a host name (in punycode) or IPv4 address, a port of 0-65535.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = rf"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:{_PORT})?/?$"
_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
PREFIX_PATTERN = rf"^({_COMPONENT}(/{_COMPONENT})*)?$"
GLOB_PATTERN = r"^[A-Za-z0-9_.\-/*?\[\]]{1,300}$"
Glob = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=GLOB_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetCreate(_Model):
    name: Name
    url: str = Field(max_length=2048, pattern=URL_PATTERN, description="The registry's root, e.g. https://host:5000.")
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(
        None, max_length=4096, description="Password or token; stored encrypted, never shown again."
    )
    tls_verify: bool = Field(True, description="Verify the target's certificate.")
    ca_pem: str | None = Field(None, max_length=65536, description="A CA bundle (PEM) to verify the target with.")


class Target(_Model):
    id: int
    name: str
    url: str
    username: str | None
    has_password: bool
    tls_verify: bool
    has_ca: bool
    created_by: str | None
    created_at: datetime


class TargetList(_Model):
    items: list[Target]


class RuleCreate(_Model):
    name: Name
    target: Name
    repositories: Glob = Field(description="Source repositories, a glob (acme/*).")
    tags: Glob = Field("*", description="Tags and aliases, a glob (v*).")
    destination_prefix: str = Field(
        "", max_length=200, pattern=PREFIX_PATTERN, description="Prepended to repository names on the target."
    )
    on_push: bool = Field(True, description="Replicate each push (and delete, with mirror_deletes) as it happens.")
    interval_seconds: int | None = Field(
        None, ge=10, le=366 * 86400, description="A full pass this often (neither this nor on_push: runs by hand only)."
    )
    mirror_deletes: bool = Field(False, description="Delete on the target what is deleted here.")
    enabled: bool = True


class Rule(_Model):
    id: int
    name: str
    target: str
    repositories: str
    tags: str
    destination_prefix: str
    on_push: bool
    interval_seconds: int | None
    mirror_deletes: bool
    enabled: bool
    last_scheduled_at: datetime | None
    created_by: str | None
    created_at: datetime


class RuleUpdate(_Model):
    enabled: bool = Field(description="Off: no on-push work is queued and no scheduled pass runs.")


class RuleList(_Model):
    items: list[Rule]


class RunRequest(_Model):
    wait: bool = Field(False, description="Answer when the execution has ended (else at once, while it runs).")


class Execution(_Model):
    id: int
    rule: str
    trigger: str = Field(description="manual, on_push or schedule.")
    scope: str | None = Field(description="What an on-push execution handled (action repository:reference, ...).")
    status: str = Field(description="running, succeeded or failed.")
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    manifests_copied: int
    manifests_skipped: int
    blobs_copied: int
    blobs_mounted: int
    blobs_skipped: int
    deleted: int
    bytes_copied: int
    error: str | None


class ExecutionPage(_Model):
    items: list[Execution]
    next_page: str | None = None
