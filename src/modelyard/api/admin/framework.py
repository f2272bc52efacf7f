"""A small typed operation table for the admin API.

Each :class:`Operation` names its method, path, body model, response model and query
parameters once; the same table registers the aiohttp routes and generates the OpenAPI
document (``openapi.py``), so the description can never drift from what is served. Handlers
take a :class:`Call` and return a pydantic model (or ``None`` for 204).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from aiohttp import web

from modelyard.api.auth import basic_credentials
from modelyard.api.context import registry_of
from modelyard.api.errors import HttpError
from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import Actor
from modelyard.policy.authorizer import ANONYMOUS, Permission, Principal
from modelyard.services.registry import Registry

ResourceKind = Literal["registry", "compartment", "repository"]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    kind: Literal["string", "integer", "boolean"]
    description: str
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    required: bool = False  # a handler that refuses the request without it (422)

    @property
    def schema(self) -> dict[str, Any]:
        """The parameter's JSON schema, with the bounds the handler enforces."""
        schema: dict[str, Any] = {"type": self.kind}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        return schema


LIMIT = QueryParam(
    "limit", "integer", f"Page size, 1-{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).", minimum=1, maximum=MAX_PAGE_SIZE
)
PAGE = QueryParam("page", "string", "The next_page value of the previous response.")
PAGE_NUMBER_DIGITS = 18  # a row id: a 64-bit integer has 19 digits
PAGE_NUMBER = QueryParam(
    "page", "string", "The next_page value of the previous response.", pattern=rf"^[0-9]{{1,{PAGE_NUMBER_DIGITS}}}$"
)


def _digits(raw: str, max_digits: int) -> int | None:
    """``raw`` as a non-negative integer if it is ASCII digits, at most ``max_digits`` of them, else
    ``None``: ``isdigit`` admits "²", which ``int`` rejects, and ``int`` refuses 4300+ digits."""
    if raw.isascii() and raw.isdigit() and len(raw) <= max_digits:
        return int(raw)
    return None


def validation_error(problems: Sequence[tuple[str, str]]) -> ValidationFailed:
    """422 naming each field and why."""
    return ValidationFailed(problems)


def from_pydantic(exc: pydantic.ValidationError, prefix: str = "") -> RegistryError:
    problems = []
    for err in exc.errors(include_url=False):
        location = ".".join(str(part) for part in err["loc"]) or "body"
        problems.append((prefix + location, err["msg"]))
    return validation_error(problems)


@dataclass(slots=True)
class Call:
    """One admin request: who asks, path and query access with validation, the parsed body, the services."""

    request: web.Request
    registry: Registry
    principal: Principal = ANONYMOUS
    body: Any = None

    @property
    def auth_enabled(self) -> bool:
        return self.registry.settings.auth_enabled

    @property
    def actor(self) -> Actor:
        """Who the services record as having made a change, and from where."""
        return Actor(self.principal.subject, self.request.remote or "unknown")

    def permissions_now(self, kind: ResourceKind, name: str | None = None) -> frozenset[Permission]:
        """The caller's permissions on a resource, read here and now.

        Reads the database: call it only from code that already runs off the event loop
        (inside ``await call.registry.read(...)``), e.g. a visibility predicate a service applies
        to each record of a list. Handlers await :meth:`permissions`, :meth:`require`, :meth:`can`.
        """
        if not self.auth_enabled:
            return frozenset(Permission)
        iam = self.registry.iam
        if kind == "registry":
            return iam.on_registry(self.principal)
        if kind == "compartment":
            return iam.on_compartment(self.principal, name)
        assert name is not None
        return iam.on_repository(self.principal, name)[0]

    def can_now(self, permission: Permission, kind: ResourceKind = "registry", name: str | None = None) -> bool:
        """:meth:`can` for code already off the event loop (see :meth:`permissions_now`)."""
        return permission in self.permissions_now(kind, name)

    async def permissions(self, kind: ResourceKind, name: str | None = None) -> frozenset[Permission]:
        """:meth:`permissions_now` through the registry's reader: off the event loop on PostgreSQL."""
        if not self.auth_enabled:
            return frozenset(Permission)
        return await self.registry.read(self.permissions_now, kind, name)

    async def require(self, permission: Permission, kind: ResourceKind = "registry", name: str | None = None) -> None:
        """Refuse unless the caller holds ``permission`` on the resource.

        Anonymous callers get 401 (so they log in). A repository the caller cannot read is
        "not found", exactly like a missing one; one it can read but not change is 403.
        """
        self.refuse_unless(permission, await self.permissions(kind, name), kind, name)

    def require_now(self, permission: Permission, kind: ResourceKind = "registry", name: str | None = None) -> None:
        """:meth:`require` for code already off the event loop (see :meth:`permissions_now`)."""
        self.refuse_unless(permission, self.permissions_now(kind, name), kind, name)

    def refuse_unless(
        self, permission: Permission, granted: frozenset[Permission], kind: ResourceKind, name: str | None
    ) -> None:
        if permission in granted:
            return
        if not self.principal.authenticated:
            raise HttpError(
                ErrorCode.UNAUTHORIZED,
                "authentication required: log in (modelyard login) or send an API key",
                headers={"WWW-Authenticate": f'Bearer realm="{self.registry.settings.token_service}"'},
            )
        if kind == "repository" and Permission.PULL not in granted:
            raise RegistryError(ErrorCode.NOT_FOUND, f"repository {name!r} does not exist", detail={"repository": name})
        raise RegistryError(
            ErrorCode.DENIED, f"{self.principal.subject} lacks {permission.value} on {kind} {name or ''}".strip()
        )

    def require_authenticated(self) -> None:
        if self.auth_enabled and not self.principal.authenticated:
            raise RegistryError(ErrorCode.UNAUTHORIZED, "authentication required: log in or send an API key")

    async def can(self, permission: Permission, kind: ResourceKind = "registry", name: str | None = None) -> bool:
        return permission in await self.permissions(kind, name)

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    def query_str(self, name: str) -> str | None:
        value = self.request.query.get(name)
        return value if value else None

    def query_bool(self, name: str) -> bool | None:
        value = self.request.query.get(name)
        if value is None:
            return None
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise validation_error([(name, "must be true or false")])

    # -- pagination: every list operation reads ``limit`` and ``page`` through these --------

    def limit(self) -> int:
        """The page size: :data:`DEFAULT_PAGE_SIZE` when absent, else an integer within bounds (or 422)."""
        raw = self.request.query.get("limit")
        if raw is None:
            return DEFAULT_PAGE_SIZE
        value = _digits(raw, len(str(MAX_PAGE_SIZE)))
        if value is None or not 1 <= value <= MAX_PAGE_SIZE:
            raise validation_error([("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")])
        return value

    def page(self) -> str | None:
        """The ``page`` cursor of a list ordered by name: the previous response's ``next_page``
        (absent or empty: the first page)."""
        return self.query_str("page")

    def page_number(self) -> int | None:
        """The ``page`` cursor of a list ordered by a row id (the audit log): absent for the
        first page, else the previous response's ``next_page``, digits (or 422; "" is no id)."""
        raw = self.request.query.get("page")
        if raw is None:
            return None
        value = _digits(raw, PAGE_NUMBER_DIGITS)
        if value is None:
            raise validation_error([("page", "must be the next_page value of a previous response")])
        return value

    def host(self) -> str:
        return self.registry.settings.public_host or self.request.host


# A handler returns a model (JSON), None (204), or a response of its own (a file download).
Handler = Callable[[Call], Awaitable[pydantic.BaseModel | web.StreamResponse | None]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Handler
    body: type[pydantic.BaseModel] | None = None
    response: type[pydantic.BaseModel] | None = None
    status: int = 200
    query: tuple[QueryParam, ...] = ()
    errors: tuple[int, ...] = field(default=(404, 422))
    # A response that is not JSON (a file): its media type, for the OpenAPI document.
    raw_response: str | None = None

    @property
    def openapi_path(self) -> str:
        """``{repository:.+}`` (aiohttp, any pattern) -> ``{repository}`` (OpenAPI)."""
        return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1].split(":")[0] for part in self.path.split("/") if part.startswith("{")]


async def authenticate(request: web.Request, registry: Registry) -> Principal:
    """The caller of an admin request: a real login (Basic credentials, or an API key or the
    refresh token of ``modelyard login`` as a Bearer token; see ``services/auth.py``), or
    anonymous. A failed login is recorded; a successful one is not (every request would log one).
    """
    if not registry.settings.auth_enabled:
        return ANONYMOUS
    header = request.headers.get("Authorization", "")
    ip = request.remote or "unknown"
    if header[:7].lower() == "bearer ":
        return (await registry.auth.bearer_login(header[7:].strip(), ip)).principal
    credentials = basic_credentials(request)
    if credentials is not None:
        return (await registry.auth.login(*credentials, ip, record_success=False)).principal
    return ANONYMOUS


def _require_json(request: web.Request, raw: bytes) -> None:
    """A body must be declared JSON (415 otherwise).

    A cross-site HTML form can only send ``text/plain``, ``multipart/form-data`` or
    ``application/x-www-form-urlencoded`` -- always with that header -- so this keeps a browser
    that remembers Basic credentials from being made to post to the admin API. An empty body
    carries nothing to forge: it is read as ``{}`` whatever its type (and gets the 422 listing
    what is missing), as some clients label an empty body ``application/octet-stream``.
    """
    if not raw:
        return
    media_type = request.content_type.lower()
    json_suffix = media_type.startswith("application/") and media_type.endswith("+json")
    if media_type != "application/json" and not json_suffix:
        raise HttpError(
            ErrorCode.UNSUPPORTED,
            f"the request body must be JSON sent with Content-Type: application/json, not {media_type}",
            status=415,
        )


async def _run(operation: Operation, request: web.Request) -> web.StreamResponse:
    registry = registry_of(request)
    call = Call(request, registry, await authenticate(request, registry))
    if operation.body is not None:
        raw = await request.read()
        _require_json(request, raw)
        try:
            call.body = operation.body.model_validate_json(raw or b"{}")
        except pydantic.ValidationError as exc:
            raise from_pydantic(exc) from None
    result = await operation.handler(call)  # a change records its own events (services, domain/events.py)
    if result is None:
        return web.Response(status=204)
    if isinstance(result, web.StreamResponse):
        return result
    return web.Response(
        status=operation.status, body=result.model_dump_json().encode(), content_type="application/json"
    )


def add_operations(app: web.Application, operations: Sequence[Operation]) -> None:
    for operation in operations:

        async def handler(request: web.Request, operation: Operation = operation) -> web.StreamResponse:
            return await _run(operation, request)

        app.router.add_route(operation.method, operation.path, handler)
