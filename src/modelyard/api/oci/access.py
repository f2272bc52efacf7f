"""Authorization of ``/v2`` requests from the token's claims.

A request the token allows needs no database lookup. A request without a valid token is 401
with the challenge naming the scope it needs. A token without the action is answered by what a
fresh token would carry (the same authorizer ``/auth/token`` asks):

- the caller *would* be granted the action (the token was asked for other actions, as crane
  asks ``push,pull`` and then deletes): 401 ``UNAUTHORIZED`` with the challenge (``error=
  "insufficient_scope"``, ``scope`` naming the action), because go-containerregistry clients
  (crane, ko), like Distribution's own, only fetch a wider token after a 401. The same token
  sent again for the same scope gets 403 ``DENIED`` with the same challenge (RFC 6750's answer
  to insufficient scope): oras-py first retries with the token it has and only fetches a new
  one after a 403 (:class:`ChallengeMemory`);
- anonymous callers: 401 as well, so clients log in;
- a known caller who would not be granted it: 403 ``DENIED`` (a new token cannot help), still
  with the challenge (RFC 6750 3.1), saying what is missing ("may pull but not delete"). A
  repository the caller may not read gets exactly the same answer whether it exists or not.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

from aiohttp import web

from modelyard.api.auth import challenge
from modelyard.api.errors import HttpError, with_headers
from modelyard.api.oci.common import registry_of
from modelyard.api.oci.routing import Endpoint, V2Route
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.events import Actor
from modelyard.policy.authorizer import token_actions
from modelyard.services.registry import Registry
from modelyard.services.tokens import AccessClaims

CLAIMS: web.RequestKey[AccessClaims] = web.RequestKey("claims", AccessClaims)


class ChallengeMemory:
    """Which tokens this process recently answered 401 for which scope (hashes only; bounded).

    A client that acts on the 401 comes back with a new token and is never found here; one
    that sends the same token again (oras-py) is, and gets the 403 it needs to fetch a new one.
    A retry comes on the same kept-alive connection, hence to the same worker process.
    """

    def __init__(self, size: int = 4096, ttl: float = 300.0) -> None:
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._size = size
        self._ttl = ttl

    def repeated(self, token: str, scope: str | None) -> bool:
        """Whether ``token`` was challenged for ``scope`` before; remembers it if not."""
        key = hashlib.sha256(f"{scope}\0{token}".encode()).digest()
        now = time.monotonic()
        seen = self._seen.pop(key, None)
        if seen is not None and now - seen < self._ttl:
            return True
        self._seen[key] = now
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return False


CHALLENGED: web.AppKey[ChallengeMemory] = web.AppKey("challenged", ChallengeMemory)

_ACTIONS = {"GET": "pull", "HEAD": "pull", "PUT": "push", "POST": "push", "PATCH": "push", "DELETE": "delete"}


def required_action(route: V2Route, method: str) -> str:
    if route.endpoint in (Endpoint.UPLOAD, Endpoint.UPLOAD_START):
        return "push"  # every step of an upload, its status and its cancellation included
    return _ACTIONS.get(method, "pull")


def _scope(route: V2Route, method: str) -> str | None:
    if route.endpoint is Endpoint.BASE:
        return None
    if route.endpoint is Endpoint.CATALOG:
        return "registry:catalog:*"
    action = required_action(route, method)
    actions = "pull,push" if action == "push" else action
    return f"repository:{route.name}:{actions}"


async def authorize(request: web.Request, route: V2Route) -> AccessClaims | None:
    """The verified claims of the request, or a refusal; ``None`` when auth is disabled."""
    registry = registry_of(request)
    if not registry.settings.auth_enabled:
        return None
    scope = _scope(route, request.method)
    header = request.headers.get("Authorization", "")
    if not header[:7].lower() == "bearer ":
        raise HttpError(
            ErrorCode.UNAUTHORIZED,
            "authentication required: get a token from the realm named in WWW-Authenticate (docker login)",
            headers={"WWW-Authenticate": challenge(request, registry, scope)},
        )
    token = header[7:].strip()
    try:
        claims = registry.tokens.verify_access(token)
    except RegistryError as exc:
        invalid = challenge(request, registry, scope, error="invalid_token")
        raise with_headers(exc, {"WWW-Authenticate": invalid}) from exc
    request[CLAIMS] = claims
    if route.endpoint is Endpoint.BASE:
        return claims
    if route.endpoint is Endpoint.CATALOG:
        if claims.allows("registry", "catalog", "*"):
            return claims
        # Every token asked for the catalog carries it (the listing is filtered instead).
        raise _ask_again(request, registry, token, scope, "this token was not issued for the catalog")
    action = required_action(route, request.method)
    if claims.allows("repository", route.name, action):
        return claims
    # Only a refusal reads metadata (who the subject is now, what it may do): off the loop.
    raise await registry.read(_refusal, request, registry, token, claims.subject, route.name, action, scope)


_ROLE_FOR = {"pull": "reader", "push": "pusher", "delete": "repoAdmin"}


def _ask_again(
    request: web.Request, registry: Registry, token: str | None, scope: str | None, message: str
) -> HttpError:
    """401 with the challenge; 403 for a ``token`` already challenged for ``scope``."""
    headers = {"WWW-Authenticate": challenge(request, registry, scope, error="insufficient_scope")}
    memory = request.app.get(CHALLENGED)
    if token is not None and memory is not None and memory.repeated(token, scope):
        return HttpError(
            ErrorCode.DENIED,
            f"{message}; this token was refused before: get a new one for scope {scope}",
            headers=headers,
        )
    return HttpError(ErrorCode.UNAUTHORIZED, f"{message}; get a token for scope {scope}", headers=headers)


def _refusal(
    request: web.Request, registry: Registry, token: str, subject: str, name: str, action: str, scope: str | None
) -> HttpError:
    """The answer to a token without ``action`` on repository ``name`` (see the module docstring)."""
    if subject == "anonymous":
        return _ask_again(request, registry, None, scope, f"authentication required to {action} repository {name}")
    principal = registry.identity.principal_for(subject)
    if principal is None:
        return HttpError(
            ErrorCode.UNAUTHORIZED,
            f"the account {subject} of this token no longer exists or is disabled; log in again",
            headers={"WWW-Authenticate": challenge(request, registry, scope, error="invalid_token")},
        )
    permissions, exists = registry.iam.on_repository(principal, name)
    would_get = token_actions(["pull", "push", "delete"], permissions, exists=exists)
    if action in would_get:
        return _ask_again(request, registry, token, scope, f"this token does not carry '{action}' on repository {name}")
    headers = {"WWW-Authenticate": challenge(request, registry, scope, error="insufficient_scope")}
    if "pull" not in would_get:
        # Indistinguishable from a repository that does not exist.
        return HttpError(
            ErrorCode.DENIED,
            f"not allowed to {action} repository {name}: it does not exist or you do not have access to it",
            headers=headers,
        )
    granted = [a for a in would_get if a != "overwrite"]
    if action == "push" and not exists:
        message = (
            f"{subject} may {' and '.join(granted)} but not create repository {name} (pushing would create it); "
            "ask an administrator for the pusher role on its compartment, or to create the repository"
        )
    else:
        message = (
            f"{subject} may {' and '.join(granted)} but not {action} in repository {name}; "
            f"ask an administrator for a role with {action} there (e.g. {_ROLE_FOR[action]})"
        )
    return HttpError(
        ErrorCode.DENIED, message, detail={"repository": name, "missing": action, "granted": granted}, headers=headers
    )


def claims_of(request: web.Request) -> AccessClaims | None:
    return request.get(CLAIMS)


def actor_of(request: web.Request) -> str:
    claims = claims_of(request)
    return claims.subject if claims is not None else "anonymous"


def acting(request: web.Request) -> Actor:
    """Who the services record as making a change through ``/v2``, and from where."""
    return Actor(actor_of(request), request.remote or "unknown")
