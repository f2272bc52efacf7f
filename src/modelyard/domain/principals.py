"""Records of identity: users, service accounts, groups, API keys, IAM policies, audit entries,
and the limits of login throttling. Plain data, no I/O (see ``records.py`` for why here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    email: str
    password_hash: str
    disabled: bool
    created_at: datetime
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceAccountRecord:
    id: int
    name: str
    description: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GroupRecord:
    name: str
    members: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    principal: str
    secret_hash: str
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    resource: str
    bindings: list[dict[str, Any]]
    version: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: str
    client_ip: str
    detail: dict[str, Any] | None


class VersionConflictError(Exception):
    """A policy write named a version that is no longer current."""


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    per_account: int  # failures of one account, counted against addresses that failed it too
    per_address: int  # failures from one address, whatever the account
    window: int  # seconds a bucket's count lasts, from its first failure
