"""Records of retention, quotas, usage and maintenance runs (``services/lifecycle/``).

Plain frozen dataclasses, no I/O: the stores build them, the services decide with them
(``policy/retention.py``), the API renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ScopeKind = Literal["repository", "compartment"]


@dataclass(frozen=True, slots=True)
class Scope:
    """What a retention policy or a quota belongs to: one repository or one compartment."""

    kind: ScopeKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What a retention run keeps; everything else in scope goes.

    A version is kept when *any* rule keeps it: among the ``keep_last`` newest (by push time),
    pushed or pulled within ``keep_days``, a current tag matching one of ``keep_tags`` (globs),
    or an alias (a mutable tag) pointing to it now or within ``alias_window_days``.
    """

    keep_last: int | None = None
    keep_days: float | None = None
    keep_tags: tuple[str, ...] = ()
    alias_window_days: float = 30.0
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    limit_bytes: int
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A manifest of a repository as retention sees it."""

    id: int
    digest: str
    size: int
    created_at: datetime
    last_pulled_at: datetime | None
    subject: str | None
    children: tuple[str, ...] = ()
    blobs: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TagSpan:
    """One lifetime of a tag (``end`` ``None``: current)."""

    tag: str
    digest: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Usage:
    """Stored bytes of a repository or compartment, counted three ways (``services/lifecycle/usage.py``).

    ``charged_bytes``: what quotas count -- each blob charged once, to the earliest link that
    still holds it, plus the repository's own manifests. ``logical_bytes``: everything it
    references, shared or not. ``exclusive_bytes``: what nothing outside it holds, i.e. roughly
    what deleting it would free.
    """

    name: str
    charged_bytes: int
    logical_bytes: int
    exclusive_bytes: int
    quota: int | None = None


@dataclass(frozen=True, slots=True)
class MaintenanceRun:
    """One gc or retention run: who started it, what it removed and the bytes it freed."""

    id: int
    kind: str
    trigger: str
    actor: str
    scope: str | None
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    removed: int
    freed_bytes: int
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class OwnerMissingError(LookupError):
    """The repository or compartment a policy or quota would belong to does not exist."""
