"""Push replication as data: targets, rules, executions, on-push tasks, and the rules on what a
rule may say. Pure (``services/replication/`` does the work, ``egress/oci_push.py`` the HTTP).

**Patterns** are shell globs (:func:`fnmatch.fnmatchcase`): ``acme/*`` for repositories,
``v*`` for tags; ``*`` is everything. A tag pattern also selects aliases (an alias is a tag).

**Destination**: a repository ``acme/llm`` goes to ``{destination_prefix}/acme/llm`` on the
target (no prefix: the same name), so one target can hold copies of several registries.

**Counts** of an execution are what was *done*: a blob the target already had (its HEAD
answered) is ``skipped``, one the target had in another repository is ``mounted``, and only
``copied`` blobs add to ``bytes_copied``. A retried execution after a failure therefore counts
only what was left, which is what resuming means here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from modelyard.domain.errors import ValidationFailed
from modelyard.domain.webhooks import http_url

SECRET_PURPOSE = "replication-target-secret"
TRIGGERS = ("manual", "on_push", "schedule")
MAX_URL = 2048
MIN_INTERVAL = 10
#: The size of an execution's ``scope`` column (``replication_executions.scope``).
MAX_SCOPE = 600
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_PATTERN = re.compile(r"^[A-Za-z0-9_.\-/*?\[\]]{1,300}$")
_PREFIX = re.compile(r"^(?:[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")


class DeleteSkipped(Exception):
    """A mirrored delete the target client chose not to do, and why (the execution notes it):
    a target that cannot delete a tag alone would have to delete the manifest, and another tag
    on the target still names it."""


def fit_scope(text: str) -> str:
    """An execution's scope cut to its column (``MAX_SCOPE``), ending in an ellipsis when cut:
    PostgreSQL refuses a longer value, and a full pass's scope of two 300-character patterns
    can be longer."""
    return text if len(text) <= MAX_SCOPE else text[: MAX_SCOPE - 1] + "\u2026"


@dataclass(frozen=True, slots=True)
class TargetRecord:
    id: int
    name: str
    url: str
    username: str | None
    has_secret: bool
    tls_verify: bool
    has_ca: bool
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TargetAccess:
    """What it takes to talk to a target: its URL, credentials in clear (never logged) and TLS."""

    url: str
    username: str | None
    password: str | None
    tls_verify: bool
    ca_pem: str | None

    def __repr__(self) -> str:
        return f"TargetAccess(url={self.url!r}, username={self.username!r}, password=***)"


@dataclass(frozen=True, slots=True)
class RuleRecord:
    id: int
    name: str
    target_id: int
    target_name: str
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

    def wants_repository(self, repository: str) -> bool:
        return fnmatchcase(repository, self.repositories)

    def wants_tag(self, tag: str) -> bool:
        return fnmatchcase(tag, self.tags)

    def destination(self, repository: str) -> str:
        return f"{self.destination_prefix}/{repository}" if self.destination_prefix else repository


@dataclass(frozen=True, slots=True)
class NewRule:
    name: str
    target: str
    repositories: str
    tags: str = "*"
    destination_prefix: str = ""
    on_push: bool = True
    interval_seconds: int | None = None
    mirror_deletes: bool = False
    enabled: bool = True


@dataclass(slots=True)
class Counts:
    """What one execution did so far (mutable while it runs, stored when it ends)."""

    manifests_copied: int = 0
    manifests_skipped: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    tags_deleted: int = 0
    bytes_copied: int = 0


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    id: int
    rule_id: int
    trigger: str
    scope: str | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: Counts
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


@dataclass(frozen=True, slots=True)
class NewTask:
    """On-push work found in the outbox: ``action`` ``copy`` (a tag or digest) or ``delete``."""

    rule_id: int
    event_id: int
    action: str
    repository: str
    reference: str


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    rule_id: int
    event_id: int
    action: str
    repository: str
    reference: str
    state: str
    attempts: int
    last_error: str | None = field(default=None)


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Seconds before try ``attempt + 1`` (doubling from ``base``, at most ``cap``)."""
    return float(min(cap, base * 2 ** max(attempt - 1, 0)))


def validate_name(name: str, what: str = "name") -> str:
    if not _NAME.match(name):
        raise ValidationFailed([(what, "1-100 of a-z 0-9 _ . - starting with a letter or digit")])
    return name


def validate_target_url(url: str) -> str:
    """An ``http(s)://host[:port]`` registry root, without credentials or path (the OCI API is
    at ``/v2/`` of the root)."""
    parts = http_url(url, MAX_URL)
    if parts.username or parts.password:
        raise ValidationFailed([("url", "must not carry credentials: give --username and a password")])
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValidationFailed([("url", "must be the registry's root (scheme, host and port only)")])
    return f"{parts.scheme}://{parts.netloc}"


def validate_rule(rule: NewRule) -> NewRule:
    problems = []
    if not _NAME.match(rule.name):
        problems.append(("name", "1-100 of a-z 0-9 _ . - starting with a letter or digit"))
    for field_name, value in (("repositories", rule.repositories), ("tags", rule.tags)):
        if not _PATTERN.match(value):
            problems.append((field_name, "a glob of 1-300 characters (letters, digits, _ . - / * ? [ ])"))
    if rule.destination_prefix and (len(rule.destination_prefix) > 200 or not _PREFIX.match(rule.destination_prefix)):
        problems.append(("destination_prefix", "a repository path (lowercase components separated by /)"))
    if rule.interval_seconds is not None and not MIN_INTERVAL <= rule.interval_seconds <= 366 * 86400:
        problems.append(("interval_seconds", f"between {MIN_INTERVAL} seconds and a year"))
    if problems:
        raise ValidationFailed(problems)
    return rule
