"""The browser session and its CSRF token, both in cookies.

The session cookie holds a refresh token issued by ``AuthService.session`` at sign-in: it is
checked like any refresh token (``AuthService.refresh``), so it stops working when the
password changes or the account goes, with no session table. It is ``HttpOnly`` (script
can't read it), ``SameSite=Lax`` (a cross-site form post does not carry it) and ``Secure``
whenever the registry is reached over TLS (here, or at a trusted proxy).

Every state-changing form also carries a CSRF token (double submit): a random value kept in its
own ``HttpOnly`` cookie and repeated in a hidden field of each form the server renders. A
cross-site page can make the browser send the cookie (on a top-level navigation) but can't
read it to fill in the field, so a post without the matching field is refused. The token is
renewed at sign-in and sign-out, so one learnt before signing in is worth nothing after.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from modelyard.domain.errors import RegistryError
from modelyard.policy.authorizer import ANONYMOUS, Principal
from modelyard.services.registry import Registry

SESSION_COOKIE = "modelyard_session"
CSRF_COOKIE = "modelyard_csrf"
CSRF_FIELD = "csrf_token"
_CSRF_KEY: web.RequestKey[str] = web.RequestKey("csrf", str)
_NEW_CSRF: web.RequestKey[bool] = web.RequestKey("csrf_new", bool)


def secure(request: web.Request, registry: Registry) -> bool:
    """Whether cookies must be ``Secure``: served over TLS here, or behind a trusted proxy that
    says the client spoke HTTPS (``X-Forwarded-Proto``, believed from ``trusted_proxies`` only)."""
    return request.secure or registry.settings.tls_cert is not None


async def viewer(request: web.Request, registry: Registry) -> Principal:
    """Who the session cookie stands for; anonymous without one, or when it no longer holds."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not registry.settings.auth_enabled:
        return ANONYMOUS
    try:
        return (await registry.read(registry.auth.refresh, token)).principal
    except RegistryError:
        return ANONYMOUS


def csrf_token(request: web.Request) -> str:
    """The request's CSRF token: the cookie's, or a new one (set on the response by :func:`finish`)."""
    if _CSRF_KEY not in request:
        existing = request.cookies.get(CSRF_COOKIE, "")
        if len(existing) >= 32:
            request[_CSRF_KEY] = existing
        else:
            request[_CSRF_KEY] = secrets.token_urlsafe(32)
            request[_NEW_CSRF] = True
    return request[_CSRF_KEY]


def renew_csrf(request: web.Request) -> None:
    """A fresh token from now on (sign-in, sign-out)."""
    request[_CSRF_KEY] = secrets.token_urlsafe(32)
    request[_NEW_CSRF] = True


def csrf_valid(request: web.Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and submitted is not None and hmac.compare_digest(cookie.encode(), submitted.encode())


def _cookie(response: web.StreamResponse, name: str, value: str, *, secure_cookie: bool, max_age: int | None) -> None:
    response.set_cookie(name, value, path="/ui", httponly=True, samesite="Lax", secure=secure_cookie, max_age=max_age)


def start_session(response: web.StreamResponse, request: web.Request, registry: Registry, token: str, ttl: int) -> None:
    _cookie(response, SESSION_COOKIE, token, secure_cookie=secure(request, registry), max_age=ttl)


def end_session(response: web.StreamResponse, request: web.Request, registry: Registry) -> None:
    response.del_cookie(SESSION_COOKIE, path="/ui")


def finish(response: web.StreamResponse, request: web.Request, registry: Registry) -> None:
    """Set the CSRF cookie when this request made a new token."""
    if request.get(_NEW_CSRF):
        _cookie(response, CSRF_COOKIE, request[_CSRF_KEY], secure_cookie=secure(request, registry), max_age=None)
