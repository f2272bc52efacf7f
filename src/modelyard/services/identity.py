"""Principals and credentials: users (argon2 passwords), service accounts, groups, API keys,
the first administrator, and the failed-login throttle.

API keys look like ``myd_<id>_<secret>``: the id finds the record, the secret is compared with
its SHA-256 (the secret is 256 random bits, so a slow hash adds nothing) and is shown only
once, at creation.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelyard.config import Settings
from modelyard.domain.errors import ErrorCode, RegistryError, TooManyLogins, ValidationFailed
from modelyard.domain.events import (
    SYSTEM,
    Actor,
    ApiKeyCreated,
    ApiKeyRevoked,
    GroupMembersChanged,
    IamPolicyChanged,
    PasswordChanged,
    PrincipalCreated,
    PrincipalDeleted,
)
from modelyard.domain.principals import ApiKeyRecord, GroupRecord, ServiceAccountRecord, ThrottleLimits, UserRecord
from modelyard.domain.records import AlreadyExistsError
from modelyard.metadata.base import MetadataStore
from modelyard.policy.authorizer import ANONYMOUS, Binding, Principal, bindings_from, holds_role, role_members
from modelyard.services.audit import log_events
from modelyard.services.passwords import BoundedHasher, CredentialCache
from modelyard.services.runner import BlockingRunner
from modelyard.services.tokens import RefreshClaims

log = logging.getLogger("modelyard.identity")

API_KEY_PREFIX = "myd"
_API_KEY = re.compile(r"^myd_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SERVICE_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}(@[a-z0-9][a-z0-9._-]{0,63})?$")
# No whitespace and no control characters (spelled out: Python's "\s" has \x1c-\x1f, JSON Schema's has not).
EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[^@\s\x00-\x1f\x7f-\x9f]{1,190}$")
MIN_PASSWORD_LENGTH = 8
TOUCH_INTERVAL = 60.0  # seconds between writes of an API key's last_used_at, per process
ADMIN_NAME = "admin"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    record: ApiKeyRecord
    secret: str


def api_key_id(secret: str) -> str | None:
    """The id of an API key (``myd_<id>_<secret>``); ``None`` for anything else."""
    match = _API_KEY.match(secret)
    return match.group(1) if match else None


def login_name(username: str, password: str) -> str:
    """The name a login is throttled and audited under: the user name, else the API key's id.

    One bucket for all keys sent without a name would let anyone who sends a few wrong keys
    lock out every key sent that way; and a key sent as the user name is a secret, never a
    name to record.
    """
    key_id = api_key_id(username) if username else api_key_id(password)
    if key_id is not None:
        return f"(api key {key_id})"
    return username or "(api key)"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode(errors="surrogatepass")).hexdigest()


def throttle_address(client_ip: str) -> str:
    """The address a failure counts against: an IPv6 client by its /64 (one host's usual share,
    so a host cannot rotate through its own addresses), anything else as given."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([(field, message)])


def _conflict(what: str) -> RegistryError:
    return RegistryError(ErrorCode.CONFLICT, f"{what} already exists")


def _principal(user: UserRecord) -> Principal:
    return Principal("user", user.name, user.email, frozenset(user.groups))


def _not_found(what: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"{what} does not exist")


class IdentityService:
    """Principals and their credentials.

    Failed logins are throttled (:meth:`authenticate`) so that guessing is slow but nobody can
    lock the owner of an account out:

    - per address: ``login_failures_per_address`` failures from one address (an IPv6 /64)
      refuse every further login from it for the rest of the window;
    - per account: after ``login_failures_per_account`` failures of one account (from
      anywhere), an address that has itself failed on that account is refused. An address
      that has not failed on it is still let through: the owner, typing the right password
      from their own machine, is never locked out by someone guessing from elsewhere. The
      price: once an account is over its limit, each further address gets one guess at it
      (and no more than its own per-address limit overall).
    - A right password from an address takes back that attempt and forgets the address's
      failures on that account (an owner who mistyped is not held to them).

    Accounts are counted by what they are, not how they were named: ``eve`` and
    ``eve@acme.com`` are one user; an unknown name counts under its case-folded form; an
    API key under its id. Every attempt is counted as a failure *before* the password is
    checked, in the same transaction that checks the limits, and taken back if it was right:
    parallel guesses cannot all pass the check before any of them is recorded.

    A right API key is never refused by the throttle (its 256-bit secret cannot be guessed,
    so refusing it would only hurt its owner); a wrong one counts against its key id.
    """

    def __init__(self, metadata: MetadataStore, runner: BlockingRunner, settings: Settings) -> None:
        self._meta = metadata
        self._run = runner.run
        self._settings = settings
        self._hasher = BoundedHasher(settings.password_hash_concurrency, settings.password_hash_queue)
        self._cache = CredentialCache(settings.credential_cache_ttl)
        self._limits = ThrottleLimits(
            settings.login_failures_per_account, settings.login_failures_per_address, settings.login_failure_window
        )
        self._dummy: str | None = None
        # Password checks in flight, by credential-cache key: the same pair arriving meanwhile waits.
        self._checking: dict[bytes, asyncio.Future[bool]] = {}
        self._touched: dict[str, float] = {}  # API key id -> when this process last wrote last_used_at

    def close(self) -> None:
        self._hasher.shutdown()

    async def _hash(self, password: str) -> str:
        with self._hasher.admission():
            return await self._hasher.hash(password)

    async def _dummy_hash(self) -> str:
        """A hash to verify against for unknown users, so their logins cost the same (made lazily:
        hashing takes a noticeable fraction of a second)."""
        if self._dummy is None:
            self._dummy = await self._hasher.hash(secrets.token_urlsafe(16))  # the caller holds an admission
        return self._dummy

    # -- bootstrap -------------------------------------------------------------------------

    async def bootstrap_admin(self) -> str | None:
        """Create user ``admin`` (with the registry ``admin`` role) on a registry without users.

        Returns the generated password, to be shown once, or ``None`` when none was generated.
        """
        if self._meta.principals.count_users():
            return None
        configured = self._settings.admin_password
        password = configured.get_secret_value() if configured else secrets.token_urlsafe(18)
        digest = await self._hash(password)
        created = PrincipalCreated(actor=SYSTEM, principal=f"user:{ADMIN_NAME}")
        try:
            await self._run(self._meta.principals.create_user, ADMIN_NAME, "admin@localhost", digest, events=[created])
        except AlreadyExistsError:
            return None  # another worker was first
        granted = IamPolicyChanged(actor=SYSTEM, target="registry", bindings=(("admin", (f"user:{ADMIN_NAME}",)),))
        await self._run(
            self._meta.policies.put,
            "registry",
            [{"role": "admin", "members": [f"user:{ADMIN_NAME}"]}],
            None,
            events=[granted],
        )
        log_events([created, granted])
        return None if configured else password

    # -- authentication --------------------------------------------------------------------

    def _account(self, username: str, password: str, user: UserRecord | None) -> str:
        """The throttle's name for the account a login tries (see the class docstring)."""
        key_id = api_key_id(username) if username else api_key_id(password)
        if key_id is not None:
            return f"key:{key_id}"
        if user is not None:
            return f"user:{user.id}"
        return "name:" + _sha256(username.strip().casefold())[:32]

    async def _failed(self, account: str, address: str) -> RegistryError:
        """Count a failure that needed no password check (a wrong API key): 401, or 429 if over."""
        wait = await self._run(self._meta.login_throttle.attempt, account, address, self._limits)
        return TooManyLogins(wait) if wait else RegistryError(ErrorCode.UNAUTHORIZED, "invalid username or password")

    async def authenticate(self, username: str, password: str, client_ip: str) -> Principal:
        """Check a username with a password or API key; throttled as the class docstring says."""
        address = throttle_address(client_ip)
        match = _API_KEY.match(password)
        if match is not None:
            principal = await self._verify_api_key(username, match.group(1), match.group(2))
            if principal is None:
                raise await self._failed(f"key:{match.group(1)}", address)
            return principal
        user = self._meta.principals.get_user(username) if username else None
        if user is not None and self._cache.hit(username, password, user):
            return self._known_right(username, password, user, address)
        key = self._cache.key(username, password)
        pending = self._checking.get(key)
        if pending is not None and user is not None and await asyncio.shield(pending):
            # The same name and password were being checked: it was right (a burst of crane
            # requests after a restart or expiry pays argon2 once, not once per request).
            user = self._meta.principals.get_user(username)
            if user is not None and self._cache.hit(username, password, user):
                return self._known_right(username, password, user, address)
        # A first check, or the same pair found wrong by another: checked (and counted) itself.
        ours: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._checking.setdefault(key, ours)
        try:
            user = await self._check_password(username, password, user, address)
        finally:
            ours.set_result(user is not None and self._cache.hit(username, password, user))
            if self._checking.get(key) is ours:
                del self._checking[key]
        return _principal(user)

    def _known_right(self, username: str, password: str, user: UserRecord, address: str) -> Principal:
        """A login the credential cache knows is right: no argon2 and nothing to count, but a
        throttled address stays refused."""
        wait = self._meta.login_throttle.refusal(self._account(username, password, user), address, self._limits)
        if wait:
            raise TooManyLogins(wait)
        return _principal(user)

    async def _check_password(self, username: str, password: str, user: UserRecord | None, address: str) -> UserRecord:
        """The argon2 check, counted by the throttle first and bounded by the hasher's admission."""
        account = self._account(username, password, user)
        with self._hasher.admission():
            wait = await self._run(self._meta.login_throttle.attempt, account, address, self._limits)
            if wait:
                raise TooManyLogins(wait)
            stored = user.password_hash if user is not None else await self._dummy_hash()  # same cost either way
            if not await self._hasher.verify(stored, password) or user is None or user.disabled:
                raise RegistryError(ErrorCode.UNAUTHORIZED, "invalid username or password")
            await self._run(self._meta.login_throttle.succeeded, account, address)
        self._cache.remember(username, password, user)
        return user

    async def _verify_api_key(self, username: str, key_id: str, secret: str) -> Principal | None:
        record = self._meta.api_keys.get(key_id)
        if record is None or not hmac.compare_digest(record.secret_hash, _sha256(secret)):
            return None
        now = datetime.now(UTC)
        if record.revoked_at is not None or (record.expires_at is not None and record.expires_at <= now):
            return None
        principal = self.principal_for(record.principal)
        if principal is None or not principal.authenticated:
            return None
        if username and username not in (principal.name, principal.email):
            return None
        # last_used_at to the minute: a write per use made every token request of a robot using
        # an API key (crane: one per request) a write transaction. The key is read, and a revoked
        # or expired one refused, on every use all the same.
        now_s = time.monotonic()
        if now_s - self._touched.get(key_id, -TOUCH_INTERVAL) >= TOUCH_INTERVAL:
            await self._run(self._meta.api_keys.touch, key_id)
            if len(self._touched) >= 10_000:
                self._touched.clear()
            self._touched[key_id] = now_s
        return principal

    def refresh_login(self, refresh: RefreshClaims) -> Principal:
        """The principal a refresh token (``modelyard login``) still stands for, or 401 saying why
        it no longer does: the account is gone or changed its password, or the key it was obtained
        with was revoked."""
        found = self.principal_for(refresh.subject)
        if found is None or not found.authenticated:
            raise RegistryError(ErrorCode.UNAUTHORIZED, "the refresh token's account no longer exists")
        if refresh.generation != self.login_generation(refresh.subject):
            raise RegistryError(
                ErrorCode.UNAUTHORIZED,
                "the account changed since this login (new password, or deleted and created again); log in again",
            )
        if refresh.key_id is not None and not self.api_key_active(refresh.key_id, refresh.subject):
            raise RegistryError(
                ErrorCode.UNAUTHORIZED, "the API key this login used was revoked or has expired; log in again"
            )
        return found

    def api_key_active(self, key_id: str, principal: str) -> bool:
        """Whether the key exists, belongs to ``principal`` and is neither revoked nor expired
        (a refresh token obtained with a key lives only as long as the key)."""
        record = self._meta.api_keys.get(key_id)
        return (
            record is not None
            and record.principal == principal
            and record.revoked_at is None
            and (record.expires_at is None or record.expires_at > datetime.now(UTC))
        )

    def login_generation(self, subject: str) -> str | None:
        """What a refresh token of ``subject`` stays valid for: this very account (not a later
        one given the same name) and, for a user, the password it had at login."""
        kind, _, name = subject.partition(":")
        if kind == "user":
            user = self._meta.principals.get_user(name)
            if user is None or user.name != name:
                return None
            return _sha256(f"{user.id}:{user.password_hash}")[:32]
        if kind == "serviceAccount":
            account = self._meta.principals.get_service_account(name)
            return None if account is None else str(account.id)
        return None

    def principal_for(self, subject: str) -> Principal | None:
        """Load the current principal behind a token subject (``None`` if gone or disabled)."""
        if subject == "anonymous":
            return ANONYMOUS
        kind, _, name = subject.partition(":")
        if kind == "user":
            user = self._meta.principals.get_user(name)
            if user is None or user.disabled or user.name != name:
                return None
            return _principal(user)
        if kind == "serviceAccount":
            account = self._meta.principals.get_service_account(name)
            if account is None or account.disabled:
                return None
            return Principal("serviceAccount", account.name)
        return None

    # -- users -----------------------------------------------------------------------------

    def _check_new_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise _invalid("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")

    async def create_user(self, name: str, email: str, password: str, *, actor: Actor) -> UserRecord:
        # ``fullmatch``: ``match`` lets "$" match before a final newline ("alice\n").
        if not USER_NAME.fullmatch(name):
            raise _invalid("name", "lowercase letters, digits, '.', '_' and '-', up to 64 characters")
        if not EMAIL.fullmatch(email):
            raise _invalid("email", "must be an email address")
        self._check_new_password(password)
        digest = await self._hash(password)
        event = PrincipalCreated(actor=actor, principal=f"user:{name}")
        try:
            record = await self._run(self._meta.principals.create_user, name, email, digest, events=[event])
        except AlreadyExistsError:
            raise _conflict(f"a user named {name!r} or with email {email!r}") from None
        log_events([event])
        return record

    def users(self) -> list[UserRecord]:
        return self._meta.principals.list_users()

    def user(self, name: str) -> UserRecord:
        record = self._meta.principals.get_user(name)
        if record is None or record.name != name:
            raise _not_found(f"user {name!r}")
        return record

    async def set_password(self, name: str, password: str, *, actor: Actor) -> None:
        """Set a password (an administrator's reset, or a change whose caller proved the old one)."""
        self._check_new_password(password)
        user = self.user(name)
        digest = await self._hash(password)
        event = PasswordChanged(actor=actor, user=name)
        if not await self._run(self._meta.principals.set_password, name, digest, events=[event]):
            raise _not_found(f"user {name!r}")
        log_events([event])
        await self._run(self._meta.login_throttle.clear, f"user:{user.id}")

    async def change_own_password(self, name: str, current: str | None, password: str, actor: Actor) -> None:
        """A user's change of their own password: the current one is required and checked like a
        login (throttled, so a stolen session cannot guess it), so whoever holds a session or key
        of the account cannot take the account over by setting a password of their own."""
        self._check_new_password(password)
        user = self.user(name)
        if not current:
            raise _invalid("current_password", "required to change your own password")
        try:
            await self._check_password(name, current, user, throttle_address(actor.client_ip))
        except RegistryError as exc:
            if exc.code is not ErrorCode.UNAUTHORIZED:
                raise
            raise RegistryError(
                ErrorCode.DENIED, "current_password is not your current password", detail={"field": "current_password"}
            ) from None
        await self.set_password(name, password, actor=actor)

    def _registry_bindings(self) -> list[Binding]:
        return bindings_from(self._meta.policies.get("registry").bindings)

    def _other_administrators(self, excluded: UserRecord) -> bool:
        """Whether someone other than ``excluded`` would still hold the registry ``admin`` role:
        an enabled user, a service account, a group with another member, or everyone (``allUsers``,
        ``allAuthenticatedUsers``)."""
        for member in role_members(self._registry_bindings(), "admin"):
            if member in ("allUsers", "allAuthenticatedUsers"):
                return True
            kind, _, value = member.partition(":")
            if kind == "user":
                user = self._meta.principals.get_user(value)
                if user is not None and user.id != excluded.id and not user.disabled:
                    return True
            elif kind == "serviceAccount" and self._meta.principals.get_service_account(value) is not None:
                return True
            elif kind == "group":
                group = self._meta.principals.get_group(value)
                if group is not None and any(m != excluded.name for m in group.members):
                    return True
        return False

    async def delete_user(self, name: str, *, actor: Actor) -> None:
        """Delete a user, unless that would leave the registry without an administrator."""
        user = self.user(name)
        if not self._other_administrators(user) and self._is_administrator(user):
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"{name} is the last administrator: grant the admin role to someone else first",
            )
        event = PrincipalDeleted(actor=actor, principal=f"user:{name}")
        if not await self._run(self._meta.principals.delete_user, name, events=[event]):
            raise _not_found(f"user {name!r}")
        log_events([event])

    def _is_administrator(self, user: UserRecord) -> bool:
        """Whether the registry ``admin`` role reaches ``user``, as the authorizer would see it."""
        return holds_role(_principal(user), self._registry_bindings(), "admin")

    async def reset_admin(self, password: str) -> None:
        """Recovery: give user ``admin`` this password (creating it if needed) and the admin role.

        For ``modelyard reset-admin``, run on the server's machine against its data: whoever
        can do that owns the registry anyway.
        """
        self._check_new_password(password)
        digest = await self._hash(password)
        if self._meta.principals.get_user(ADMIN_NAME) is None:
            event: PrincipalCreated | PasswordChanged = PrincipalCreated(actor=SYSTEM, principal=f"user:{ADMIN_NAME}")
            await self._run(self._meta.principals.create_user, ADMIN_NAME, "admin@localhost", digest, events=[event])
        else:
            event = PasswordChanged(actor=SYSTEM, user=ADMIN_NAME)
            await self._run(self._meta.principals.set_password, ADMIN_NAME, digest, events=[event])
        log_events([event])
        admin = self._meta.principals.get_user(ADMIN_NAME)
        if admin is not None:
            await self._run(self._meta.login_throttle.clear, f"user:{admin.id}")
        policy = self._meta.policies.get("registry")
        bindings = list(policy.bindings)
        if not any(b.get("role") == "admin" and f"user:{ADMIN_NAME}" in (b.get("members") or []) for b in bindings):
            bindings.append({"role": "admin", "members": [f"user:{ADMIN_NAME}"]})
            changed = IamPolicyChanged(
                actor=SYSTEM,
                target="registry",
                bindings=tuple((str(b.get("role")), tuple(str(m) for m in b.get("members") or [])) for b in bindings),
            )
            await self._run(self._meta.policies.put, "registry", bindings, None, events=[changed])
            log_events([changed])

    # -- service accounts ------------------------------------------------------------------

    async def create_service_account(self, name: str, description: str, *, actor: Actor) -> ServiceAccountRecord:
        if not SERVICE_ACCOUNT_NAME.fullmatch(name):
            raise _invalid("name", "like 'ci-bot' or 'ci-bot@acme': lowercase letters, digits, '.', '_', '-'")
        event = PrincipalCreated(actor=actor, principal=f"serviceAccount:{name}")
        try:
            record = await self._run(self._meta.principals.create_service_account, name, description, events=[event])
        except AlreadyExistsError:
            raise _conflict(f"service account {name!r}") from None
        log_events([event])
        return record

    def service_accounts(self) -> list[ServiceAccountRecord]:
        return self._meta.principals.list_service_accounts()

    def service_account(self, name: str) -> ServiceAccountRecord:
        record = self._meta.principals.get_service_account(name)
        if record is None:
            raise _not_found(f"service account {name!r}")
        return record

    async def delete_service_account(self, name: str, *, actor: Actor) -> None:
        event = PrincipalDeleted(actor=actor, principal=f"serviceAccount:{name}")
        if not await self._run(self._meta.principals.delete_service_account, name, events=[event]):
            raise _not_found(f"service account {name!r}")
        log_events([event])

    # -- API keys --------------------------------------------------------------------------

    async def create_api_key(
        self, principal: str, description: str, expires_in_days: int | None, *, actor: Actor
    ) -> NewApiKey:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        record = ApiKeyRecord(
            id=key_id, principal=principal, secret_hash=_sha256(secret), description=description, created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None, revoked_at=None,
            last_used_at=None,
        )  # fmt: skip
        event = ApiKeyCreated(actor=actor, principal=principal, identifier=key_id)
        await self._run(self._meta.api_keys.create, record, events=[event])
        log_events([event])
        return NewApiKey(record, f"{API_KEY_PREFIX}_{key_id}_{secret}")

    def api_keys(self, principal: str) -> list[ApiKeyRecord]:
        return self._meta.api_keys.list_for(principal)

    async def revoke_api_key(self, principal: str, key_id: str, *, actor: Actor) -> None:
        event = ApiKeyRevoked(actor=actor, principal=principal, identifier=key_id)
        if not await self._run(self._meta.api_keys.revoke, principal, key_id, events=[event]):
            raise _not_found(f"active API key {key_id!r} of {principal}")
        log_events([event])

    # -- groups ----------------------------------------------------------------------------

    async def create_group(self, name: str, *, actor: Actor) -> GroupRecord:
        if not USER_NAME.fullmatch(name):
            raise _invalid("name", "lowercase letters, digits, '.', '_' and '-'")
        event = PrincipalCreated(actor=actor, principal=f"group:{name}")
        try:
            record = await self._run(self._meta.principals.create_group, name, events=[event])
        except AlreadyExistsError:
            raise _conflict(f"group {name!r}") from None
        log_events([event])
        return record

    def groups(self) -> list[GroupRecord]:
        return self._meta.principals.list_groups()

    def group(self, name: str) -> GroupRecord:
        record = self._meta.principals.get_group(name)
        if record is None:
            raise _not_found(f"group {name!r}")
        return record

    async def set_group_members(self, name: str, members: list[str], *, actor: Actor) -> GroupRecord:
        event = GroupMembersChanged(actor=actor, group=name, members=tuple(members))
        try:
            record = await self._run(self._meta.principals.set_group_members, name, members, events=[event])
        except LookupError as exc:
            raise _invalid("members", f"unknown users: {exc}") from None
        if record is None:
            raise _not_found(f"group {name!r}")
        log_events([event])
        return record

    async def delete_group(self, name: str, *, actor: Actor) -> None:
        event = PrincipalDeleted(actor=actor, principal=f"group:{name}")
        if not await self._run(self._meta.principals.delete_group, name, events=[event]):
            raise _not_found(f"group {name!r}")
        log_events([event])
