"""``/auth/token`` (Docker token auth, GET with Basic credentials or anonymous, and the OAuth2
``POST`` form) and the ``WWW-Authenticate`` challenge of ``/v2``.

Who may have a token and what it carries is ``services/auth.py``'s (the same path as the
admin API's logins); this module reads the request and writes the answer. A request may name
at most :data:`MAX_SCOPES` scopes (a client asks for a handful; 100,000 of them once held a
worker's event loop for 21 s).

The realm of the challenge is ``public_host`` when it is set: behind a proxy it must be, or the
realm names whatever ``Host`` the client sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from modelyard.api.context import registry_of
from modelyard.api.errors import HttpError, with_headers
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.policy.authorizer import ANONYMOUS
from modelyard.services.auth import Login, Scope
from modelyard.services.registry import Registry

MAX_SCOPES = 100


def _too_many_scopes() -> HttpError:
    return HttpError(
        ErrorCode.UNSUPPORTED,
        f"a token request may name at most {MAX_SCOPES} scopes; ask for the repositories this operation needs",
        status=400,
        detail={"max_scopes": MAX_SCOPES},
    )


def parse_scopes(values: list[str]) -> list[Scope]:
    """``repository:acme/llm:pull,push`` (several per parameter, space-separated, are allowed).

    Repeated scopes count once; more than :data:`MAX_SCOPES` distinct ones are refused (400)
    before any of them is looked at.
    """
    scopes: dict[Scope, None] = {}
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name and actions:
                scopes[Scope(kind, name, tuple(a for a in actions.split(",") if a))] = None
                if len(scopes) > MAX_SCOPES:
                    raise _too_many_scopes()
    return list(scopes)


def client_ip(request: web.Request) -> str:
    return request.remote or "unknown"


def challenge(request: web.Request, registry: Registry, scope: str | None, *, error: str | None = None) -> str:
    host = registry.settings.public_host or request.host
    parts = [f'realm="{request.scheme}://{host}/auth/token"', f'service="{registry.settings.token_service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise RegistryError(ErrorCode.UNAUTHORIZED, "malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise RegistryError(ErrorCode.UNAUTHORIZED, "malformed Basic credentials")
    return username, password


async def _login(request: web.Request, registry: Registry, username: str, password: str) -> Login:
    """A login at ``/auth/token``; a refused one is recorded and challenged for Basic credentials
    again, a successful one is recorded with its token (:func:`_issue`)."""
    try:
        return await registry.auth.login(username, password, client_ip(request), record_success=False)
    except RegistryError as exc:
        if exc.code is ErrorCode.UNAUTHORIZED:
            raise with_headers(exc, {"WWW-Authenticate": f'Basic realm="{registry.settings.token_service}"'}) from exc
        raise


async def _issue(
    request: web.Request,
    registry: Registry,
    login: Login,
    scope_values: list[str],
    *,
    offline: bool,
    password_login: bool,
) -> tuple[dict[str, Any], list[Scope]]:
    """The token answer's body and the scopes asked for; a password login is recorded with the
    token, in one write, or on its own if no token comes of it (too many scopes, say)."""
    ip = client_ip(request)
    logged_in = (registry.auth.login_succeeded(login, ip),) if password_login else ()
    try:
        scopes = parse_scopes(scope_values)
        tokens = await registry.auth.issue(login, scopes, ip, offline=offline, along=logged_in)
    except Exception:
        await registry.auth.record(*logged_in)
        raise
    body: dict[str, Any] = {
        "token": tokens.access.token,
        "access_token": tokens.access.token,
        "expires_in": tokens.access.expires_in,
        "issued_at": tokens.access.issued_at,
    }
    if tokens.refresh is not None:
        body["refresh_token"] = tokens.refresh
    return body, scopes


def _check_service(registry: Registry, service: str | None) -> None:
    if service and service != registry.settings.token_service:
        raise RegistryError(
            ErrorCode.DENIED, f"tokens here are for service {registry.settings.token_service!r}, not {service!r}"
        )


def _json(body: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), content_type="application/json",
                        headers={"Cache-Control": "no-store"})  # fmt: skip


async def get_token(request: web.Request) -> web.StreamResponse:
    """``GET /auth/token?service=…&scope=…`` with Basic credentials, or none for anonymous."""
    registry = registry_of(request)
    _check_service(registry, request.query.get("service"))
    credentials = basic_credentials(request)
    login = Login(ANONYMOUS) if credentials is None else await _login(request, registry, *credentials)
    offline = request.query.get("offline_token", "").lower() == "true"
    scope_values = request.query.getall("scope", [])
    body, _ = await _issue(request, registry, login, scope_values, offline=offline, password_login=bool(credentials))
    return _json(body)


async def post_token(request: web.Request) -> web.StreamResponse:
    """The OAuth2 form: ``grant_type=password`` or ``refresh_token``."""
    registry = registry_of(request)
    form = await request.post()
    _check_service(registry, str(form.get("service") or "") or None)
    grant = str(form.get("grant_type") or "")
    if grant == "password":
        login = await _login(request, registry, str(form.get("username") or ""), str(form.get("password") or ""))
    elif grant == "refresh_token":
        login = await registry.read(registry.auth.refresh, str(form.get("refresh_token") or ""))
    else:
        raise HttpError(ErrorCode.UNSUPPORTED, "grant_type must be 'password' or 'refresh_token'", status=400)
    offline = str(form.get("access_type") or "") == "offline"
    scope_values = [str(v) for v in form.getall("scope", [])]
    password_login = grant == "password"
    body, scopes = await _issue(request, registry, login, scope_values, offline=offline, password_login=password_login)
    body.pop("token")
    body["scope"] = " ".join(str(s) for s in scopes)
    return _json(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/auth/token", get_token)
    app.router.add_post("/auth/token", post_token)
