"""Protocols of identity, IAM policies, login throttling, audit and server secrets (records:
``domain/principals.py``)."""

from __future__ import annotations

from typing import Any, Protocol

from modelyard.domain.principals import (
    ApiKeyRecord,
    AuditRecord,
    GroupRecord,
    PolicyRecord,
    ServiceAccountRecord,
    ThrottleLimits,
    UserRecord,
)


class Principals(Protocol):
    def get_user(self, name_or_email: str) -> UserRecord | None: ...
    def list_users(self) -> list[UserRecord]: ...
    def create_user(self, name: str, email: str, password_hash: str) -> UserRecord: ...
    def set_password(self, name: str, password_hash: str) -> bool: ...
    def delete_user(self, name: str) -> bool: ...
    def count_users(self) -> int: ...
    def get_service_account(self, name: str) -> ServiceAccountRecord | None: ...
    def list_service_accounts(self) -> list[ServiceAccountRecord]: ...
    def create_service_account(self, name: str, description: str) -> ServiceAccountRecord: ...
    def delete_service_account(self, name: str) -> bool: ...
    def get_group(self, name: str) -> GroupRecord | None: ...
    def list_groups(self) -> list[GroupRecord]: ...
    def create_group(self, name: str) -> GroupRecord: ...
    def set_group_members(self, name: str, users: list[str]) -> GroupRecord | None: ...
    def delete_group(self, name: str) -> bool: ...


class ApiKeys(Protocol):
    def create(self, record: ApiKeyRecord) -> None: ...
    def get(self, key_id: str) -> ApiKeyRecord | None: ...
    def list_for(self, principal: str) -> list[ApiKeyRecord]: ...
    def revoke(self, principal: str, key_id: str) -> bool: ...
    def touch(self, key_id: str) -> None: ...


class Policies(Protocol):
    def get(self, resource: str) -> PolicyRecord: ...
    def get_many(self, resources: list[str]) -> list[PolicyRecord]: ...
    def put(
        self,
        resource: str,
        bindings: list[dict[str, Any]],
        expected_version: int | None,
        *,
        public_repository: tuple[str, bool] | None = None,
    ) -> PolicyRecord:
        """Raises :class:`VersionConflictError` unless ``expected_version`` is current (None:
        unchecked). ``public_repository`` (name, is_public) sets that repository's flag in the
        same transaction."""


class LoginThrottle(Protocol):
    def attempt(self, account: str, client_ip: str, limits: ThrottleLimits) -> int:
        """Count one login attempt as a failure of ``account`` from ``client_ip``, unless the
        limits refuse it -- checked and counted in one transaction, so parallel attempts cannot
        all pass the check. Returns 0 when counted, else the seconds until the refusing bucket's
        window ends (the refused attempt is not counted)."""

    def refusal(self, account: str, client_ip: str, limits: ThrottleLimits) -> int:
        """What :meth:`attempt` would answer, counting nothing (for a login that needs no check)."""

    def succeeded(self, account: str, client_ip: str) -> None:
        """The attempt turned out right: take its count back and forget the pair's failures."""

    def clear(self, account: str) -> None:
        """Forget every failure of ``account`` (a new password was set)."""


class AuditLog(Protocol):
    def append(self, actor: str, action: str, resource: str, outcome: str, client_ip: str, detail: Any) -> None: ...
    def query(self, limit: int, before_id: int | None, actor: str | None, action: str | None) -> list[AuditRecord]: ...


class Secrets(Protocol):
    def get_or_create(self, name: str, value: str) -> str:
        """The stored value, storing ``value`` first if there is none (first writer wins)."""
