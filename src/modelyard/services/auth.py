"""Logging in and issuing tokens: the one path behind ``/auth/token`` and the admin API.

Who is calling (:meth:`AuthService.login`, :meth:`AuthService.refresh`,
:meth:`AuthService.bearer_login`): a user name with a password or an API key (throttled and
bounded by :class:`~modelyard.services.identity.IdentityService`), or the refresh token of
``modelyard login`` (still valid only while the account and the API key it was obtained with
are unchanged). The admin API takes exactly these; a ``/v2`` access token is refused there:
those are short-lived, scoped to repositories and handed to every OCI client, so one must
never change a password or mint an API key.

What a token carries (:meth:`AuthService.grant`): for each requested scope, only what the
authorizer grants (``policy.authorizer.token_actions`` over the caller's IAM permissions, and
``tags`` naming the tag globs that ``push`` and ``overwrite`` are limited to when only
conditional bindings grant them, ``policy.authorizer.tag_conditions``);
asking for more is not an error, the token simply carries less (as the Docker token spec says).

Events: neither a login nor a token changes data the registry keeps (the throttle's counters
aside), so their events are written on their own (``AuditService.record``) rather than in a
change's transaction. A failed login is recorded however it came in; a successful one only
where the caller asks (a login at ``/auth/token`` is, but the admin API checks credentials on
every request, and recording each would flood the log). Every access token issued is
recorded with what it grants. At ``/auth/token`` the login and its token go in one write
(:meth:`AuthService.issue`'s ``along``): two group-commit rounds per token request held
repeated token requests ~40 % lower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.domain.errors import RegistryError
from modelyard.domain.events import Actor, Event, LoginFailed, LoginSucceeded, TokenIssued
from modelyard.domain.reference import validate_name
from modelyard.policy.authorizer import Principal, tag_conditions, token_actions
from modelyard.services.audit import AuditService
from modelyard.services.iam import IamService
from modelyard.services.identity import API_KEY_PREFIX, IdentityService, api_key_id, login_name
from modelyard.services.tokens import IssuedToken, TokenService

ADMIN_CREDENTIALS = (
    "the admin API takes Basic credentials (a password or API key), an API key as a Bearer token, or the "
    "refresh token of 'modelyard login'"
)


@dataclass(frozen=True, slots=True)
class Scope:
    """A requested scope, ``repository:acme/llm:pull,push`` (the Docker token spec's ``scope``)."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True, slots=True)
class Login:
    """Who logged in, and the API key they used if they used one (a refresh token issued to
    this login lives only as long as that key)."""

    principal: Principal
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    """What a token request gets: an access token, what it grants, and (asked for offline
    access by a real login) a refresh token."""

    access: IssuedToken
    granted: list[dict[str, Any]]
    refresh: str | None = None


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except RegistryError:
        return False
    return True


class AuthService:
    def __init__(self, identity: IdentityService, iam: IamService, tokens: TokenService, audit: AuditService) -> None:
        self._identity = identity
        self._iam = iam
        self._tokens = tokens
        self._audit = audit

    # -- who is calling --------------------------------------------------------------------

    async def login(self, username: str, password: str, client_ip: str, *, record_success: bool) -> Login:
        """Check a user name with a password or API key (an API key may come without a name),
        recording :class:`LoginFailed` under the name tried (an API key by its id: never a
        secret) and, with ``record_success``, :class:`LoginSucceeded`."""
        try:
            principal = await self._identity.authenticate(username, password, client_ip)
        except RegistryError as exc:
            actor = Actor(login_name(username, password), client_ip)
            await self._audit.record(LoginFailed(actor=actor, reason=exc.code.name))
            raise
        if record_success:
            await self._audit.record(LoginSucceeded(actor=Actor(principal.subject, client_ip)))
        return Login(principal, api_key_id(password))

    def refresh(self, refresh_token: str, *, wrong_kind: str | None = None) -> Login:
        """The login a refresh token still stands for (see ``IdentityService.refresh_login``);
        ``wrong_kind`` is the refusal of any other token."""
        claims = self._tokens.verify_refresh(refresh_token, wrong_kind=wrong_kind)
        return Login(self._identity.refresh_login(claims), claims.key_id)

    async def bearer_login(self, token: str, client_ip: str) -> Login:
        """A Bearer token of the admin API: an API key (a login like any other, but a success is
        not recorded) or a refresh token; an access token is refused."""
        if token.startswith(f"{API_KEY_PREFIX}_"):
            return await self.login("", token, client_ip, record_success=False)
        return self.refresh(
            token, wrong_kind=f"a /v2 access token does not authenticate the admin API: {ADMIN_CREDENTIALS}"
        )

    def session(self, login: Login) -> IssuedToken:
        """A web UI session for ``login``: a refresh token (kept by the browser in an HttpOnly
        cookie), so a session ends exactly when a refresh token would -- on a password change,
        the account's deletion or the revocation of the key it came from -- and is checked
        by :meth:`refresh` like one."""
        generation = self._identity.login_generation(login.principal.subject)
        return self._tokens.issue_refresh(login.principal.subject, login.key_id, generation)

    # -- what a token carries --------------------------------------------------------------

    async def grant(self, principal: Principal, scopes: list[Scope]) -> list[dict[str, Any]]:
        """The ``access`` claim for ``scopes``: each with the actions ``principal`` is granted,
        scopes granting nothing it may see left out (the IAM lookups run off the event loop)."""
        names = [s.name for s in scopes if s.type == "repository" and _valid_name(s.name)]
        found = await self._iam.on_repositories(principal, names)
        pushing = [s.name for s in scopes if s.name in found and {"push", "*"} & set(s.actions)]
        limits = await self._iam.tag_limits_on(principal, pushing)
        access = []
        for scope in scopes:
            if scope.type == "repository":
                if scope.name not in found:
                    continue
                permissions, exists = found[scope.name]
                actions = token_actions(scope.actions, permissions, exists=exists)
            elif scope.type == "registry" and scope.name == "catalog":
                actions = ["*"]  # the catalog itself is filtered by what the caller may read
            else:
                continue
            entry: dict[str, Any] = {"type": scope.type, "name": scope.name, "actions": actions}
            conditions = tag_conditions(actions, limits.get(scope.name, {}))
            if conditions:
                entry["tags"] = conditions
            access.append(entry)
        return access

    async def issue(
        self, login: Login, scopes: list[Scope], client_ip: str, *, offline: bool, along: Sequence[Event] = ()
    ) -> Tokens:
        """An access token granting what :meth:`grant` allows, recorded as :class:`TokenIssued`
        after ``along`` (the request's :class:`LoginSucceeded`) in one transaction; with
        ``offline``, a refresh token too (for a real login only). Recording is the last step:
        once it is done, nothing here fails."""
        principal = login.principal
        access = await self.grant(principal, scopes)
        token = self._tokens.issue_access(principal.subject, access)
        refresh = None
        if offline and principal.authenticated:
            generation = self._identity.login_generation(principal.subject)
            refresh = self._tokens.issue_refresh(principal.subject, login.key_id, generation).token
        granted = tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
        await self._audit.record(*along, TokenIssued(actor=Actor(principal.subject, client_ip), access=granted))
        return Tokens(token, access, refresh)

    @staticmethod
    def login_succeeded(login: Login, client_ip: str) -> LoginSucceeded:
        """The event of a successful password login, for :meth:`issue` to record with its token."""
        return LoginSucceeded(actor=Actor(login.principal.subject, client_ip))

    async def record(self, *events: Event) -> None:
        """Record events that go with no data change (a login whose token request then failed)."""
        await self._audit.record(*events)
