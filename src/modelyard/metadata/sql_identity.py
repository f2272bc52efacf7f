"""SQL implementation of the identity, IAM policy, throttle, audit and secret stores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from modelyard.domain.events import Event, event_from_row
from modelyard.domain.principals import (
    ApiKeyRecord,
    AuditRecord,
    GroupRecord,
    PolicyRecord,
    ServiceAccountRecord,
    ThrottleLimits,
    UserRecord,
    VersionConflictError,
)
from modelyard.domain.records import AlreadyExistsError
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.fastread import as_json, as_time
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_base import SqlPart, SqlStoreAccess

# The reads every login makes (``get_user``, the throttle's ``refusal``), built once and run on
# the fast-read path (``metadata/fastread.py``): a token request with remembered credentials
# spent ~40 % of its time building and executing these through SQLAlchemy (issue 17).
_u = t.users.c
_GET_USER = select(_u.id, _u.name, _u.email, _u.password_hash, _u.disabled, _u.created_at).where(
    (_u.name == bindparam("who")) | (_u.email == bindparam("who"))
)
_GROUPS_OF = (
    select(t.groups.c.name)
    .join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
    .where(t.group_members.c.user_id == bindparam("user_id"))
    .order_by(t.groups.c.name)
)
_BUCKETS = select(t.login_attempts.c.bucket, t.login_attempts.c.failures, t.login_attempts.c.window_start).where(
    t.login_attempts.c.bucket.in_([bindparam("account"), bindparam("pair"), bindparam("address")])
)

# A repository's policies are read with its compartment's and the registry's: 1-3 resources.
_p = t.iam_policies.c
_POLICIES = {
    count: select(_p.resource, _p.bindings, _p.version, _p.updated_at).where(
        _p.resource.in_([bindparam(f"r{i}") for i in range(count)])
    )
    for count in (1, 2, 3)
}


def _maybe(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def forget_policy(conn: Connection, resource: str) -> None:
    """Delete the IAM policy of a resource that is being deleted, in the caller's transaction
    (``compartment:<name>`` or ``repository:<name>``, as services/iam.py names them): a resource
    created again under the same name starts with no grants."""
    conn.execute(delete(t.iam_policies).where(t.iam_policies.c.resource == resource))


def forget_members(conn: Connection, members: set[str]) -> None:
    """Remove ``members`` from every binding of every policy, in the caller's transaction (a
    principal being deleted: whoever is created later under its name or email gets none of its
    grants). A binding left without members goes; each changed policy gets a new version, so a
    policy read before this and written after it is refused as stale. On PostgreSQL the
    policies are read ``FOR UPDATE``, so a concurrent policy write waits for this one or loses
    its version check."""
    p = t.iam_policies.c
    query = select(p.resource, p.bindings, p.version)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    for row in conn.execute(query).all():
        kept = []
        for binding in row.bindings or []:
            listed = [str(m) for m in binding.get("members") or []]
            remaining = [m for m in listed if m not in members]
            if remaining:
                kept.append({**binding, "members": remaining})
        if kept != list(row.bindings or []):
            conn.execute(
                update(t.iam_policies)
                .where(p.resource == row.resource)
                .values(bindings=kept, version=row.version + 1, updated_at=utcnow())
            )


class SqlPrincipals(SqlPart):
    def _groups_of(self, conn: Connection, user_id: int) -> tuple[str, ...]:
        query = (
            select(t.groups.c.name)
            .join(t.group_members, t.group_members.c.group_id == t.groups.c.id)
            .where(t.group_members.c.user_id == user_id)
            .order_by(t.groups.c.name)
        )
        return tuple(conn.execute(query).scalars())

    def _user(self, conn: Connection, row: Any) -> UserRecord:
        return UserRecord(
            row.id, row.name, row.email, row.password_hash, bool(row.disabled), as_utc(row.created_at),
            self._groups_of(conn, row.id),
        )  # fmt: skip

    def get_user(self, name_or_email: str) -> UserRecord | None:
        fast = self._store.fast
        row = fast.first(_GET_USER, {"who": name_or_email})
        if row is None:
            return None
        user_id, name, email, password_hash, disabled, created_at = row
        groups = tuple(str(g[0]) for g in fast.rows(_GROUPS_OF, {"user_id": user_id}))
        return UserRecord(user_id, name, email, password_hash, bool(disabled), as_time(created_at), groups)

    def list_users(self) -> list[UserRecord]:
        with self._read() as conn:
            return [self._user(conn, row) for row in conn.execute(select(t.users).order_by(t.users.c.name))]

    def count_users(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.users)).scalar_one())

    def create_user(self, name: str, email: str, password_hash: str, *, events: Sequence[Event] = ()) -> UserRecord:
        values = {"name": name, "email": email, "password_hash": password_hash, "disabled": False,
                  "created_at": utcnow()}  # fmt: skip

        def work(conn: Connection) -> None:
            conn.execute(insert(t.users).values(**values))
            insert_events(conn, events)

        try:
            self._store.write(work)
        except IntegrityError:
            raise AlreadyExistsError(name) from None
        record = self.get_user(name)
        assert record is not None
        return record

    def set_password(self, name: str, password_hash: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            statement = update(t.users).where(t.users.c.name == name).values(password_hash=password_hash)
            if not conn.execute(statement).rowcount:
                return False
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def delete_user(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            row = conn.execute(select(t.users.c.id, t.users.c.email).where(t.users.c.name == name)).first()
            if row is None:
                return False
            conn.execute(delete(t.group_members).where(t.group_members.c.user_id == row.id))
            conn.execute(delete(t.api_keys).where(t.api_keys.c.principal == f"user:{name}"))
            conn.execute(delete(t.users).where(t.users.c.id == row.id))
            forget_members(conn, {f"user:{name}", f"user:{row.email}"})
            insert_events(conn, events)
            return True

        return self._store.write(work)

    @staticmethod
    def _service_account(row: Any) -> ServiceAccountRecord:
        return ServiceAccountRecord(row.id, row.name, row.description, bool(row.disabled), as_utc(row.created_at))

    def get_service_account(self, name: str) -> ServiceAccountRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.service_accounts).where(t.service_accounts.c.name == name)).first()
        return None if row is None else self._service_account(row)

    def list_service_accounts(self) -> list[ServiceAccountRecord]:
        with self._read() as conn:
            rows = conn.execute(select(t.service_accounts).order_by(t.service_accounts.c.name))
            return [self._service_account(row) for row in rows]

    def create_service_account(
        self, name: str, description: str, *, events: Sequence[Event] = ()
    ) -> ServiceAccountRecord:
        values = {"name": name, "description": description, "disabled": False, "created_at": utcnow()}

        def work(conn: Connection) -> None:
            conn.execute(insert(t.service_accounts).values(**values))
            insert_events(conn, events)

        try:
            self._store.write(work)
        except IntegrityError:
            raise AlreadyExistsError(name) from None
        record = self.get_service_account(name)
        assert record is not None
        return record

    def delete_service_account(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            conn.execute(delete(t.api_keys).where(t.api_keys.c.principal == f"serviceAccount:{name}"))
            if conn.execute(delete(t.service_accounts).where(t.service_accounts.c.name == name)).rowcount == 0:
                return False
            forget_members(conn, {f"serviceAccount:{name}"})
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def _group(self, conn: Connection, row: Any) -> GroupRecord:
        members = conn.execute(
            select(t.users.c.name)
            .join(t.group_members, t.group_members.c.user_id == t.users.c.id)
            .where(t.group_members.c.group_id == row.id)
            .order_by(t.users.c.name)
        ).scalars()
        return GroupRecord(row.name, tuple(members), as_utc(row.created_at))

    def get_group(self, name: str) -> GroupRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.groups).where(t.groups.c.name == name)).first()
            return None if row is None else self._group(conn, row)

    def list_groups(self) -> list[GroupRecord]:
        with self._read() as conn:
            return [self._group(conn, row) for row in conn.execute(select(t.groups).order_by(t.groups.c.name))]

    def create_group(self, name: str, *, events: Sequence[Event] = ()) -> GroupRecord:
        def work(conn: Connection) -> None:
            conn.execute(insert(t.groups).values(name=name, created_at=utcnow()))
            insert_events(conn, events)

        try:
            self._store.write(work)
        except IntegrityError:
            raise AlreadyExistsError(name) from None
        record = self.get_group(name)
        assert record is not None
        return record

    def set_group_members(self, name: str, users: list[str], *, events: Sequence[Event] = ()) -> GroupRecord | None:
        def work(conn: Connection) -> bool:
            group_id = conn.execute(select(t.groups.c.id).where(t.groups.c.name == name)).scalar()
            if group_id is None:
                return False
            ids = {n: i for i, n in conn.execute(select(t.users.c.id, t.users.c.name).where(t.users.c.name.in_(users)))}
            missing = [u for u in users if u not in ids]
            if missing:
                raise LookupError(", ".join(missing))
            conn.execute(delete(t.group_members).where(t.group_members.c.group_id == group_id))
            if ids:
                conn.execute(insert(t.group_members), [{"group_id": group_id, "user_id": i} for i in ids.values()])
            insert_events(conn, events)
            return True

        return self.get_group(name) if self._store.write(work) else None

    def delete_group(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            group_id = conn.execute(select(t.groups.c.id).where(t.groups.c.name == name)).scalar()
            if group_id is None:
                return False
            conn.execute(delete(t.group_members).where(t.group_members.c.group_id == group_id))
            conn.execute(delete(t.groups).where(t.groups.c.id == group_id))
            forget_members(conn, {f"group:{name}"})
            insert_events(conn, events)
            return True

        return self._store.write(work)


class SqlApiKeys(SqlPart):
    @staticmethod
    def _record(row: Any) -> ApiKeyRecord:
        return ApiKeyRecord(
            row.id, row.principal, row.secret_hash, row.description, as_utc(row.created_at),
            _maybe(row.expires_at), _maybe(row.revoked_at), _maybe(row.last_used_at),
        )  # fmt: skip

    def create(self, record: ApiKeyRecord, *, events: Sequence[Event] = ()) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                insert(t.api_keys).values(
                    id=record.id,
                    principal=record.principal,
                    secret_hash=record.secret_hash,
                    description=record.description,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                )
            )
            insert_events(conn, events)

        self._store.write(work)

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
        return None if row is None else self._record(row)

    def list_for(self, principal: str) -> list[ApiKeyRecord]:
        query = select(t.api_keys).where(t.api_keys.c.principal == principal).order_by(t.api_keys.c.created_at)
        with self._read() as conn:
            return [self._record(row) for row in conn.execute(query)]

    def revoke(self, principal: str, key_id: str, *, events: Sequence[Event] = ()) -> bool:
        k = t.api_keys.c

        def work(conn: Connection) -> bool:
            statement = update(t.api_keys).where(k.id == key_id, k.principal == principal, k.revoked_at.is_(None))
            if not conn.execute(statement.values(revoked_at=utcnow())).rowcount:
                return False
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def touch(self, key_id: str) -> None:
        self._store.write(
            lambda conn: conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=utcnow()))
        )


class SqlPolicies(SqlPart):
    @staticmethod
    def _record(resource: str, row: Any) -> PolicyRecord:
        if row is None:
            return PolicyRecord(resource, [], 0, None)
        return PolicyRecord(resource, list(row.bindings), int(row.version), as_utc(row.updated_at))

    def get(self, resource: str) -> PolicyRecord:
        with self._read() as conn:
            row = conn.execute(select(t.iam_policies).where(t.iam_policies.c.resource == resource)).first()
        return self._record(resource, row)

    def get_many(self, resources: list[str]) -> list[PolicyRecord]:
        statement = _POLICIES.get(len(resources))
        if statement is not None:  # every permission check: the fast-read path
            found = {
                row[0]: PolicyRecord(row[0], list(as_json(row[1]) or []), int(row[2]), as_time(row[3]))
                for row in self._store.fast.rows(statement, {f"r{i}": r for i, r in enumerate(resources)})
            }
            return [found.get(resource) or PolicyRecord(resource, [], 0, None) for resource in resources]
        with self._read() as conn:
            rows = {
                r.resource: r
                for r in conn.execute(select(t.iam_policies).where(t.iam_policies.c.resource.in_(resources)))
            }
        return [self._record(resource, rows.get(resource)) for resource in resources]

    def put(
        self,
        resource: str,
        bindings: list[dict[str, Any]],
        expected_version: int | None,
        *,
        public_repository: tuple[str, bool] | None = None,
        events: Sequence[Event] = (),
    ) -> PolicyRecord:
        def work(conn: Connection) -> None:
            p = t.iam_policies.c
            current = conn.execute(select(p.version).where(p.resource == resource)).scalar()
            version = current or 0
            if expected_version is not None and expected_version != version:
                raise VersionConflictError(resource)
            if current is None:
                # A concurrent first write makes this insert fail; the retried transaction then
                # sees that policy's version and refuses the stale expectation.
                conn.execute(
                    insert(t.iam_policies).values(resource=resource, bindings=bindings, version=1, updated_at=utcnow())
                )
            else:
                changed = conn.execute(
                    update(t.iam_policies)
                    .where(p.resource == resource, p.version == current)
                    .values(bindings=bindings, version=current + 1, updated_at=utcnow())
                ).rowcount
                if not changed:  # another write got in between (READ COMMITTED): not ours to overwrite
                    raise VersionConflictError(resource)
            if public_repository is not None:
                repository, is_public = public_repository
                r = t.repositories.c
                conn.execute(update(t.repositories).where(r.name == repository).values(is_public=is_public))
            insert_events(conn, events)

        self._store.write(work)
        return self.get(resource)


class _Refused(Exception):
    """Raised inside the attempt's transaction to roll its counts back."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


class SqlLoginThrottle(SqlPart):
    """Failure counters as one row per bucket, bumped with ``INSERT … ON CONFLICT DO UPDATE …
    RETURNING`` (SQLite >= 3.35 and PostgreSQL): the upsert takes the row's lock, so parallel
    attempts on one bucket -- in any worker -- see each other's counts in turn, and an attempt
    over the limit rolls its own counts back before the lock is released.

    Buckets are always bumped in the same order (account, pair, address), so two transactions
    never wait on each other's rows in a cycle.
    """

    _purge_every = 256

    def __init__(self, store: SqlStoreAccess) -> None:
        super().__init__(store)
        self._attempts = 0

    @staticmethod
    def _buckets(account: str, client_ip: str) -> tuple[str, str, str]:
        return f"account:{account}", f"pair:{account} {client_ip}", f"address:{client_ip}"

    @staticmethod
    def _bump(conn: Connection, bucket: str, now: datetime, cutoff: datetime) -> tuple[int, datetime]:
        """Add one failure to ``bucket`` (a new window if its window has passed); the count before
        this failure and the window's start."""
        a = t.login_attempts.c
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        expired = a.window_start < cutoff
        statement = (
            dialect_insert(t.login_attempts)
            .values(bucket=bucket, window_start=now, failures=1)
            .on_conflict_do_update(
                index_elements=[a.bucket],
                set_={
                    "failures": case((expired, 1), else_=a.failures + 1),
                    "window_start": case((expired, now), else_=a.window_start),
                },
            )
            .returning(a.failures, a.window_start)
        )
        failures, start = conn.execute(statement).one()
        return int(failures) - 1, as_utc(start)

    @staticmethod
    def _verdict(
        limits: ThrottleLimits, now: datetime, account: tuple[int, datetime], pair: int, address: tuple[int, datetime]
    ) -> int:
        """0 to let an attempt through, else the seconds until the refusing bucket's window ends;
        from the failures counted before it (the policy is explained in services/identity.py)."""

        def retry_after(start: datetime) -> int:
            return max(1, math.ceil((start + timedelta(seconds=limits.window) - now).total_seconds()))

        if address[0] >= limits.per_address:
            return retry_after(address[1])
        if pair > 0 and account[0] >= limits.per_account:
            return retry_after(account[1])
        return 0

    def refusal(self, account: str, client_ip: str, limits: ThrottleLimits) -> int:
        now = utcnow()
        cutoff = now - timedelta(seconds=limits.window)
        buckets = self._buckets(account, client_ip)
        rows = self._store.fast.rows(_BUCKETS, dict(zip(("account", "pair", "address"), buckets, strict=True)))
        counts = {bucket: (int(failures), as_time(start)) for bucket, failures, start in rows}
        live = {b: c for b, c in counts.items() if c[1] >= cutoff}
        none = (0, now)
        return self._verdict(
            limits, now, live.get(buckets[0], none), live.get(buckets[1], none)[0], live.get(buckets[2], none)
        )

    def attempt(self, account: str, client_ip: str, limits: ThrottleLimits) -> int:
        now = utcnow()
        cutoff = now - timedelta(seconds=limits.window)

        def work(conn: Connection) -> None:
            account_bucket, pair_bucket, address_bucket = self._buckets(account, client_ip)
            by_account = self._bump(conn, account_bucket, now, cutoff)
            by_pair, _ = self._bump(conn, pair_bucket, now, cutoff)
            by_address = self._bump(conn, address_bucket, now, cutoff)
            wait = self._verdict(limits, now, by_account, by_pair, by_address)
            if wait:
                raise _Refused(wait)

        self._attempts += 1
        if self._attempts % self._purge_every == 0:  # buckets whose window has passed count nothing
            stale = delete(t.login_attempts).where(t.login_attempts.c.window_start < cutoff)
            self._store.write(lambda conn: conn.execute(stale))
        try:
            self._store.write(work)
        except _Refused as refused:
            return refused.retry_after
        return 0

    def succeeded(self, account: str, client_ip: str) -> None:
        account_bucket, pair_bucket, address_bucket = self._buckets(account, client_ip)
        a = t.login_attempts.c

        def work(conn: Connection) -> None:
            conn.execute(
                update(t.login_attempts)
                .where(a.bucket.in_([account_bucket, address_bucket]), a.failures > 0)
                .values(failures=a.failures - 1)
            )
            conn.execute(delete(t.login_attempts).where(a.bucket == pair_bucket))

        self._store.write(work)

    def clear(self, account: str) -> None:
        a = t.login_attempts.c
        self._store.write(
            lambda conn: conn.execute(
                delete(t.login_attempts).where(
                    (a.bucket == f"account:{account}") | a.bucket.startswith(f"pair:{account} ", autoescape=True)
                )
            )
        )


class SqlAuditLog(SqlPart):
    """The audit log's reads over the outbox, and the writes of events that change no data."""

    def record(self, events: Sequence[Event]) -> None:
        if events:
            self._store.write(lambda conn: insert_events(conn, events))

    def after(self, last_id: int, limit: int) -> list[tuple[int, Event]]:
        a = t.audit_events.c
        query = (
            select(a.id, a.event_type, a.payload, a.actor, a.client_ip, a.time)
            .where(a.id > last_id, a.event_type.is_not(None))
            .order_by(a.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [
                (r.id, event_from_row(r.event_type, r.payload or {}, r.actor, r.client_ip, as_utc(r.time)))
                for r in conn.execute(query)
            ]

    def query(self, limit: int, before_id: int | None, actor: str | None, action: str | None) -> list[AuditRecord]:
        a = t.audit_events.c
        query = select(t.audit_events).order_by(a.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(a.id < before_id)
        if actor is not None:
            query = query.where(a.actor == actor)
        if action is not None:
            query = query.where(a.action == action)
        with self._read() as conn:
            return [
                AuditRecord(r.id, as_utc(r.time), r.actor, r.action, r.resource, r.outcome, r.client_ip, r.detail)
                for r in conn.execute(query)
            ]


class SqlSecrets(SqlPart):
    def get_or_create(self, name: str, value: str) -> str:
        def work(conn: Connection) -> str:
            current = conn.execute(select(t.server_secrets.c.value).where(t.server_secrets.c.name == name)).scalar()
            if current is not None:
                return str(current)
            conn.execute(insert(t.server_secrets).values(name=name, value=value, created_at=utcnow()))
            return value

        return self._store.write(work)
