"""Protocols of identity, IAM policies, login throttling, audit and server secrets (records:
``domain/principals.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from modelyard.domain.events import Event
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
    def create_user(self, name: str, email: str, password_hash: str, *, events: Sequence[Event] = ()) -> UserRecord:
        """Raises :class:`AlreadyExistsError`. Every write here that takes ``events`` inserts them
        in its own transaction, and only when it changed something (``domain/events.py``)."""

    def set_password(self, name: str, password_hash: str, *, events: Sequence[Event] = ()) -> bool: ...
    def delete_user(self, name: str, *, events: Sequence[Event] = ()) -> bool: ...
    def count_users(self) -> int: ...
    def get_service_account(self, name: str) -> ServiceAccountRecord | None: ...
    def list_service_accounts(self) -> list[ServiceAccountRecord]: ...
    def create_service_account(
        self, name: str, description: str, *, events: Sequence[Event] = ()
    ) -> ServiceAccountRecord: ...
    def delete_service_account(self, name: str, *, events: Sequence[Event] = ()) -> bool: ...
    def get_group(self, name: str) -> GroupRecord | None: ...
    def list_groups(self) -> list[GroupRecord]: ...
    def create_group(self, name: str, *, events: Sequence[Event] = ()) -> GroupRecord: ...
    def set_group_members(self, name: str, users: list[str], *, events: Sequence[Event] = ()) -> GroupRecord | None: ...
    def delete_group(self, name: str, *, events: Sequence[Event] = ()) -> bool: ...


class ApiKeys(Protocol):
    def create(self, record: ApiKeyRecord, *, events: Sequence[Event] = ()) -> None: ...
    def get(self, key_id: str) -> ApiKeyRecord | None: ...
    def list_for(self, principal: str) -> list[ApiKeyRecord]: ...
    def revoke(self, principal: str, key_id: str, *, events: Sequence[Event] = ()) -> bool: ...
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
        events: Sequence[Event] = (),
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
    """The event outbox (``domain/events.py``): the audit log's rows, and the events behind them."""

    def record(self, events: Sequence[Event]) -> None:
        """Write events that go with no data change (a login, a token issued), on their own."""

    def query(self, limit: int, before_id: int | None, actor: str | None, action: str | None) -> list[AuditRecord]:
        """Audit rows, newest first, with ids below ``before_id``."""

    def after(self, last_id: int, limit: int) -> list[tuple[int, Event]]:
        """Up to ``limit`` events with row ids above ``last_id``, oldest first, for consumers
        that keep their own position (rows from before the outbox have no event and are skipped).

        On PostgreSQL ids are taken when a transaction inserts and become visible when it
        commits, so a row with a lower id can appear after a higher one was read: a consumer
        should re-read a short window behind its position (or read rows older than a few
        seconds) and skip the ids it has handled.
        """


class Secrets(Protocol):
    def get_or_create(self, name: str, value: str) -> str:
        """The stored value, storing ``value`` first if there is none (first writer wins)."""
