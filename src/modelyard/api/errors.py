"""The single place an error becomes an HTTP response.

:class:`~modelyard.domain.errors.RegistryError` is rendered as the spec's error body with its
code's status; the typed errors of ``domain/errors.py`` get the status and headers HTTP gives
them here (:func:`http_view`), and :class:`HttpError` is the API layer's own refusal with an
explicit status or headers (a challenge, ``Allow``, a malformed header). aiohttp's own
refusals (unknown route, wrong method, oversized body) get the same JSON shape; a client that
hangs up mid-request is logged as such in one line (and the access log shows ``499``, nginx's
"client closed request"), not as a server error; anything unexpected is logged with a request
id and answered ``500 UNKNOWN`` without a stack trace.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import hdrs, web

from modelyard.api.headers import upload_headers
from modelyard.domain.errors import (
    DeniedByState,
    ErrorCode,
    ManifestTooLarge,
    RegistryError,
    RetryLater,
    UploadOutOfOrder,
)
from modelyard.domain.hub import HubNotFound

log = logging.getLogger("modelyard.api")

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpError(RegistryError):
    """A refusal of the HTTP layer itself, with its own ``status`` (default: the code's) and
    ``headers``: the ``WWW-Authenticate`` challenge, ``Allow`` of a 405, a malformed header."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        detail: Any = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, detail=detail)
        self.status = status or code.status
        self.headers = dict(headers or {})


def http_view(exc: RegistryError) -> tuple[int, dict[str, str]]:
    """The status and headers that answer ``exc`` (before the API version header)."""
    if isinstance(exc, HttpError):
        return exc.status, dict(exc.headers)
    if isinstance(exc, UploadOutOfOrder):  # the spec: 416 with where the upload stands
        return 416, upload_headers(exc.repository, exc.upload_id, exc.offset)
    if isinstance(exc, ManifestTooLarge):
        return 413, {}
    if isinstance(exc, DeniedByState):  # see domain/errors.py for why DENIED answers 409 here
        return 409, {}
    if isinstance(exc, RetryLater):
        return exc.code.status, {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, HubNotFound):  # the Hugging Face client reads the kind from X-Error-Code
        headers = {"X-Error-Code": exc.kind, "X-Error-Message": exc.message[:500]}
        if exc.commit is not None:
            headers["X-Repo-Commit"] = exc.commit
        # As the Hub: an anonymous caller is told 401 (log in), whether the repository is missing or private.
        return (401 if exc.anonymous else 404), headers
    return exc.code.status, {}


def with_headers(exc: RegistryError, headers: Mapping[str, str]) -> HttpError:
    """``exc`` answered as it would be, plus ``headers`` (a challenge added to a refused login)."""
    status, own = http_view(exc)
    return HttpError(exc.code, exc.message, detail=exc.detail, status=status, headers={**own, **headers})


def error_response(exc: RegistryError) -> web.Response:
    status, own = http_view(exc)
    headers = {**API_VERSION_HEADER, **own}
    return web.Response(
        status=status,
        body=json.dumps({"errors": [exc.to_json()]}).encode(),
        content_type="application/json",
        headers=headers,
    )


def _from_http_exception(exc: web.HTTPException) -> HttpError:
    if exc.status == 405:
        return HttpError(ErrorCode.UNSUPPORTED, f"method not allowed on {exc.reason}", status=405)
    if exc.status == 413:
        return HttpError(ErrorCode.SIZE_INVALID, "request body too large", status=413)
    if exc.status == 404:
        return HttpError(ErrorCode.UNSUPPORTED, "no such endpoint", status=404)
    return HttpError(ErrorCode.UNSUPPORTED, exc.reason, status=exc.status)


CLIENT_CLOSED_REQUEST = 499


class ClientGoneError(ConnectionResetError):
    """The client closed the connection before its request body was complete, seen by code that
    reads the socket itself (``api/oci/direct_body.py``) rather than through aiohttp."""


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


#: Set by code that left the connection unable to carry another request (a body read past
#: aiohttp's parser, ``api/oci/direct_body.py``): the answer, whatever it is, closes it.
CLOSE_CONNECTION: web.RequestKey[bool] = web.RequestKey("modelyard.close_connection", bool)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _answer(request, handler)
    # Here rather than in an ``on_response_prepare`` hook: any hook at all puts a signal on the
    # path of every response (~3 % of a manifest GET).
    if request.get(CLOSE_CONNECTION):
        response.force_close()
        response.headers[hdrs.CONNECTION] = "close"
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc))
    except Exception as exc:  # the one last-resort handler: log it, never leak a traceback
        # "Connection lost" reading the body, through aiohttp or straight from the socket:
        if isinstance(exc, ClientGoneError) or (isinstance(exc, ConnectionResetError) and _client_gone(request)):
            log.info("client disconnected during %s %s; the request was abandoned", request.method, request.path)
            return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
        request_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error in %s %s (request id %s)", request.method, request.path, request_id)
        return error_response(
            RegistryError(
                ErrorCode.UNKNOWN, f"internal error; the server log has details under request id {request_id}"
            )
        )
