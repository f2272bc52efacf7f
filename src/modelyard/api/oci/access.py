"""Authorization of ``/v2`` requests from the token's claims alone.

No database lookup is needed to refuse: a request without a valid token is 401 with the
challenge naming the scope it needs; a token without the action is 401 for anonymous callers
(so clients log in) and 403 ``DENIED`` for known ones, both with the challenge (``error=
"insufficient_scope"``). A repository the caller may not read gets exactly the same answer
whether it exists or not.
"""

from __future__ import annotations

from aiohttp import web

from modelyard.api.auth import challenge
from modelyard.api.oci.common import registry_of
from modelyard.api.oci.routing import Endpoint, V2Route
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.services.tokens import AccessClaims

CLAIMS: web.RequestKey[AccessClaims] = web.RequestKey("claims", AccessClaims)

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


def authorize(request: web.Request, route: V2Route) -> AccessClaims | None:
    """The verified claims of the request, or a refusal; ``None`` when auth is disabled."""
    registry = registry_of(request)
    if not registry.settings.auth_enabled:
        return None
    scope = _scope(route, request.method)
    header = request.headers.get("Authorization", "")
    if not header[:7].lower() == "bearer ":
        raise RegistryError(
            ErrorCode.UNAUTHORIZED,
            "authentication required: get a token from the realm named in WWW-Authenticate (docker login)",
            headers={"WWW-Authenticate": challenge(request, registry, scope)},
        )
    try:
        claims = registry.tokens.verify_access(header[7:].strip())
    except RegistryError as exc:
        exc.headers["WWW-Authenticate"] = challenge(request, registry, scope, error="invalid_token")
        raise
    request[CLAIMS] = claims
    if route.endpoint is Endpoint.BASE:
        return claims
    if route.endpoint is Endpoint.CATALOG:
        allowed = claims.allows("registry", "catalog", "*")
        what = "list the catalog"
    else:
        action = required_action(route, request.method)
        allowed = claims.allows("repository", route.name, action)
        what = f"{action} repository {route.name}: it does not exist or you do not have access to it"
    if allowed:
        return claims
    if claims.subject == "anonymous":
        raise RegistryError(
            ErrorCode.UNAUTHORIZED,
            f"authentication required to {what}",
            headers={"WWW-Authenticate": challenge(request, registry, scope, error="insufficient_scope")},
        )
    # Still a challenge (RFC 6750 3.1, insufficient_scope): a client whose token was for other
    # actions (oras-py reuses the token of its first request) learns the scope to ask for.
    raise RegistryError(
        ErrorCode.DENIED,
        f"not allowed to {what}",
        headers={"WWW-Authenticate": challenge(request, registry, scope, error="insufficient_scope")},
    )


def claims_of(request: web.Request) -> AccessClaims | None:
    return request.get(CLAIMS)


def actor_of(request: web.Request) -> str:
    claims = claims_of(request)
    return claims.subject if claims is not None else "anonymous"
