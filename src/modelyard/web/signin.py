"""Signing in and out of the web UI.

Signing in is ``AuthService.login`` -- the same password (or API key) check, throttling and
``LoginSucceeded``/``LoginFailed`` events as ``/auth/token`` -- followed by a session token
(``AuthService.session``) in the session cookie. ``next`` only ever leads to a page of the UI,
never off-site.
"""

from __future__ import annotations

from aiohttp import web

from modelyard.api.errors import http_view
from modelyard.domain.errors import RegistryError
from modelyard.web import session
from modelyard.web.page import WebCall


def _next_page(raw: str | None) -> str:
    """A local UI path to return to; anything else (``//evil``, ``https://…``) is the home page."""
    if raw and raw.startswith("/ui/") and not raw.startswith("/ui//") and "\\" not in raw:
        return raw
    return "/ui/"


async def login_form(call: WebCall) -> web.StreamResponse:
    return await call.render("login.html", next=_next_page(call.request.query.get("next")), error=None, username="")


async def login(call: WebCall) -> web.StreamResponse:
    username, password = call.field("username"), call.field("password")
    target = _next_page(call.field("next"))
    if not call.auth_enabled:
        return call.redirect(target)
    if not username or not password:
        return await call.render("login.html", status=422, next=target, error="Enter your user name and password.",
                           username=username)  # fmt: skip
    try:
        signed_in = await call.registry.auth.login(
            username, password, call.request.remote or "unknown", record_success=True
        )
    except RegistryError as exc:
        status = http_view(exc)[0]
        # Throttled: say so and when to retry; otherwise one message whatever was wrong.
        message = exc.message if status == 429 else "Wrong user name or password."
        return await call.render("login.html", status=429 if status == 429 else 401, next=target, error=message,
                           username=username)  # fmt: skip
    token = await call.registry.read(call.registry.auth.session, signed_in)
    response = call.redirect(target)
    session.start_session(response, call.request, call.registry, token.token, token.expires_in)
    session.renew_csrf(call.request)
    return response


async def logout(call: WebCall) -> web.StreamResponse:
    response = call.redirect("/ui/")
    session.end_session(response, call.request, call.registry)
    session.renew_csrf(call.request)
    return response
