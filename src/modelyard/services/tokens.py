"""Docker token auth: signed JWT access tokens for ``/v2`` and refresh (offline) tokens.

Tokens are HS256 JWTs: the registry is both issuer and verifier, so one secret shared by all
workers and replicas (kept in the metadata database unless configured) is all it needs.
Verification pins the algorithm, so ``alg: none`` and tokens signed with another key are
rejected; ``/v2`` needs no database lookup to refuse a request.

Every ``/v2`` request verifies its token, and a docker-style client sends the same one for
minutes: decoding and checking it (base64, JSON, HMAC, claims) took ~30-40 us, a third of a
manifest GET. So a verified access token's claims are remembered (:class:`VerifiedTokens`)
until its ``exp``: a hit costs one dict lookup. Nothing a hit skips can change meanwhile: the
key is fixed for the process's life, and an access token is valid until it expires whatever
happens to its account (as before: ``/v2`` reads no account, which is why access tokens live
minutes; refresh tokens and API keys are checked against the database on every use).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.policy.authorizer import Permission, limits_from_conditions

ISSUER = "modelyard"
_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    access: dict[tuple[str, str], frozenset[str]]
    # Per repository: the tag globs its tag-writing actions are limited to (binding conditions).
    tag_conditions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def allows(self, resource_type: str, name: str, action: str) -> bool:
        return action in self.access.get((resource_type, name), frozenset())

    def tag_limits(self, name: str) -> dict[Permission, tuple[str, ...] | None] | None:
        """Which tags of repository ``name`` the token may push and move, when binding
        conditions limit them (``None``: no limit beyond its actions)."""
        conditions = self.tag_conditions.get(name)
        if not conditions:
            return None
        return limits_from_conditions(self.access.get(("repository", name), frozenset()), conditions)


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    subject: str
    key_id: str | None  # the API key the login used, if it used one
    generation: str | None  # what the account was at login (see IdentityService.login_generation)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str


class VerifiedTokens:
    """Access tokens verified by this process, with their claims, until they expire (bounded:
    the oldest go first; a full table costs a re-verification, never a wrong answer)."""

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._entries: dict[str, tuple[float, AccessClaims]] = {}

    def get(self, token: str) -> AccessClaims | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if time.time() >= entry[0]:
            del self._entries[token]
            return None
        return entry[1]

    def put(self, token: str, expires: float, claims: AccessClaims) -> None:
        if len(self._entries) >= self._size:
            for old in list(self._entries)[: self._size // 4]:  # dicts keep insertion order
                del self._entries[old]
        self._entries[token] = (expires, claims)


class TokenService:
    def __init__(self, secret: bytes, service: str, ttl: int, refresh_ttl: int) -> None:
        self._secret = secret
        self.service = service
        self.ttl = ttl
        self.refresh_ttl = refresh_ttl
        self._verified = VerifiedTokens()

    def _encode(self, claims: dict[str, Any], ttl: int) -> IssuedToken:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": self.service, "iat": now, "nbf": now - 5, "exp": now + ttl,
                   "jti": uuid.uuid4().hex, **claims}  # fmt: skip
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return IssuedToken(jwt.encode(payload, self._secret, algorithm=_ALGORITHM), ttl, issued)

    def issue_access(self, subject: str, access: list[dict[str, Any]]) -> IssuedToken:
        return self._encode({"sub": subject, "access": access, "typ": "access"}, self.ttl)

    def issue_refresh(self, subject: str, key_id: str | None = None, generation: str | None = None) -> IssuedToken:
        """A refresh token; ``key_id`` names the API key it was obtained with, if one was, and
        ``generation`` the state of the account it stays valid for."""
        claims: dict[str, Any] = {"sub": subject, "typ": "refresh"}
        if key_id is not None:
            claims["key"] = key_id
        if generation is not None:
            claims["gen"] = generation
        return self._encode(claims, self.refresh_ttl)

    def _decode(self, token: str, kind: str, wrong_kind: str | None = None) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[_ALGORITHM], audience=self.service, issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise RegistryError(ErrorCode.UNAUTHORIZED, "the token has expired; get a new one") from None
        except jwt.InvalidTokenError:
            raise RegistryError(ErrorCode.UNAUTHORIZED, "the token is not valid for this registry") from None
        if claims.get("typ") != kind:
            raise RegistryError(ErrorCode.UNAUTHORIZED, wrong_kind or f"expected a {kind} token")
        return claims

    def verify_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token (remembered until it expires: see the module docstring)."""
        known = self._verified.get(token)
        if known is not None:
            return known
        claims = self._decode(token, "access")
        access: dict[tuple[str, str], frozenset[str]] = {}
        conditions: dict[str, dict[str, tuple[str, ...]]] = {}
        for entry in claims.get("access") or []:
            if isinstance(entry, dict):
                key = (str(entry.get("type")), str(entry.get("name")))
                access[key] = access.get(key, frozenset()) | frozenset(str(a) for a in entry.get("actions") or [])
                tags = entry.get("tags")
                if key[0] == "repository" and isinstance(tags, dict):
                    conditions[key[1]] = {str(a): tuple(str(p) for p in (v or ())) for a, v in tags.items()}
        verified = AccessClaims(str(claims["sub"]), access, conditions)
        self._verified.put(token, float(claims["exp"]), verified)
        return verified

    def verify_refresh(self, token: str, *, wrong_kind: str | None = None) -> RefreshClaims:
        """The claims of a refresh token; ``wrong_kind`` is the refusal for any other token."""
        claims = self._decode(token, "refresh", wrong_kind)
        key, generation = claims.get("key"), claims.get("gen")
        return RefreshClaims(
            str(claims["sub"]), None if key is None else str(key), None if generation is None else str(generation)
        )
