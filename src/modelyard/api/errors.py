"""The single place an error becomes an HTTP response.

:class:`~modelyard.domain.errors.RegistryError` is rendered as the spec's error body with its
status and headers; aiohttp's own refusals (unknown route, wrong method, oversized body) get
the same JSON shape; a client that hangs up mid-request is logged as such in one line (and the
access log shows ``499``, nginx's "client closed request"), not as a server error; anything
unexpected is logged with a request id and answered ``500 UNKNOWN`` without a stack trace.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard.domain.errors import ErrorCode, RegistryError

log = logging.getLogger("modelyard.api")

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: RegistryError) -> web.Response:
    headers = {**API_VERSION_HEADER, **exc.headers}
    return web.Response(
        status=exc.status,
        body=json.dumps({"errors": [exc.to_json()]}).encode(),
        content_type="application/json",
        headers=headers,
    )


def _from_http_exception(exc: web.HTTPException) -> RegistryError:
    if exc.status == 405:
        return RegistryError(ErrorCode.UNSUPPORTED, f"method not allowed on {exc.reason}", status=405)
    if exc.status == 413:
        return RegistryError(ErrorCode.SIZE_INVALID, "request body too large", status=413)
    if exc.status == 404:
        return RegistryError(ErrorCode.UNSUPPORTED, "no such endpoint", status=404)
    return RegistryError(ErrorCode.UNSUPPORTED, exc.reason, status=exc.status)


CLIENT_CLOSED_REQUEST = 499


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(_from_http_exception(exc))
    except Exception as exc:  # the one last-resort handler: log it, never leak a traceback
        if isinstance(exc, ConnectionResetError) and _client_gone(request):  # "Connection lost" reading the body
            log.info("client disconnected during %s %s; the request was abandoned", request.method, request.path)
            return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
        request_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error in %s %s (request id %s)", request.method, request.path, request_id)
        return error_response(
            RegistryError(
                ErrorCode.UNKNOWN, f"internal error; the server log has details under request id {request_id}"
            )
        )
