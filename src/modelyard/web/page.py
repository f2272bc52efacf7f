"""How a web page is served: who is viewing, the CSRF check, rendering, and refusals as pages.

A web handler is an API-layer peer of the admin API: it takes a :class:`WebCall` -- the admin
API's :class:`~modelyard.api.admin.framework.Call` (the same ``require``/``can`` checks, so
there is one path for authorization) built for the session's principal -- calls the same
services, and returns HTML. Refusals are the services' typed errors, given their status by
``api.errors.http_view`` like everywhere else: a repository the viewer may not read is a 404
page exactly like a missing one, an anonymous viewer asked to sign in is sent to the sign-in
page, and a post without the form's CSRF token is refused before the handler runs.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from modelyard.api.admin.framework import Call
from modelyard.api.context import registry_of
from modelyard.api.errors import http_view
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.policy.authorizer import Permission
from modelyard.web import session

HERE = Path(__file__).parent
# Only the registry's own scripts, styles and images (and data: images of READMEs); no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def human_bytes(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d %H:%M UTC")


def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def repo_url(name: str, *rest: str) -> str:
    """``/ui/r/acme/llm`` and its sub-pages behind ``/-/`` (as the admin API's routes)."""
    path = "/ui/r/" + quote(name, safe="/")
    if rest:
        path += "/-/" + "/".join(quote(part, safe="/") for part in rest)
    return path


@functools.cache
def environment() -> jinja2.Environment:
    """The templates, one set per process: they ship inside the package and never change."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(bytes=human_bytes, when=when, short=short_digest, pretty=pretty_json)
    env.globals.update(repo_url=repo_url, urlencode=urlencode)
    return env


@dataclass(slots=True)
class WebCall(Call):
    """A :class:`Call` made by a browser: the form of a post, and the page's CSRF token."""

    form: MultiDictProxy[Any] | None = None

    @property
    def csrf(self) -> str:
        return session.csrf_token(self.request)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    async def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        """The page, rendered where a metadata read may happen: the template asks the viewer's
        permissions (``can(...)``), which read the database -- off the event loop on PostgreSQL."""
        return await self.registry.read(self._render, template, status, context)

    def _render(self, template: str, status: int, context: dict[str, Any]) -> web.Response:
        env = environment()
        started = time.perf_counter()
        html = env.get_template(template).render(
            viewer=self.principal,
            auth_enabled=self.auth_enabled,
            is_admin=self.can_now(Permission.PRINCIPALS_MANAGE),
            can_audit=self.can_now(Permission.AUDIT_READ),
            csrf=self.csrf,
            csrf_field=session.CSRF_FIELD,
            path=self.request.path_qs,
            can=lambda permission, kind="registry", name=None: self.can_now(Permission(permission), kind, name),
            **context,
        )
        response = web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)
        response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    def redirect(self, location: str, notice: str | None = None) -> web.Response:
        """After a post: back to a page (303), with a one-line notice shown there."""
        if notice:
            location += ("&" if "?" in location else "?") + urlencode({"notice": notice})
        return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


PageHandler = Callable[[WebCall], Awaitable[web.StreamResponse]]


async def _error_page(call: WebCall, exc: RegistryError) -> web.StreamResponse:
    status, _headers = http_view(exc)
    if status == 401 or exc.code is ErrorCode.UNAUTHORIZED:
        if call.request.method == "GET":
            return call.redirect("/ui/login?" + urlencode({"next": call.request.path_qs}))
        status = 401
    title = {404: "Not found", 403: "Not allowed", 409: "Conflict", 422: "Not accepted", 429: "Too many attempts"}
    return await call.render(
        "error.html", status=status, title=title.get(status, "Refused"), message=exc.message, status_code=status
    )


def page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler serving ``handler`` as a page (see the module's docstring)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        registry = registry_of(request)
        call = WebCall(request, registry, await session.viewer(request, registry))
        if request.method == "POST":
            call.form = await request.post()
            submitted = call.form.get(session.CSRF_FIELD)
            if not session.csrf_valid(request, submitted if isinstance(submitted, str) else None):
                # The token stays as it was: a forged post must not change the victim's forms.
                response: web.StreamResponse = await call.render(
                    "error.html", status=403, title="Form expired", status_code=403,
                    message="This form is missing its security token or it has expired. Go back, reload the page "
                    "and try again.",
                )  # fmt: skip
                session.finish(response, request, registry)
                return response
        try:
            response = await handler(call)
        except RegistryError as exc:
            response = await _error_page(call, exc)
        session.finish(response, request, registry)
        return response

    return serve


def notice_of(call: WebCall) -> str | None:
    value = call.request.query.get("notice")
    return value[:300] if value else None


def form_list(form: Mapping[str, Any] | None, name: str) -> list[str]:
    """Lines of a textarea (tag patterns, members): stripped, empty ones dropped."""
    raw = form.get(name) if form is not None else None
    if not isinstance(raw, str):
        return []
    return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]
