"""The OCI Distribution ``/v2`` API: one catch-all route and a dispatch table.

A single route plus :func:`~modelyard.api.oci.routing.parse_v2_path` (rather than one regex
route per endpoint) lets a malformed name answer ``NAME_INVALID`` instead of a bare 404, and
keeps the per-request routing cost to a few string operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from modelyard.api.context import REGISTRY
from modelyard.api.errors import API_VERSION_HEADER, HttpError
from modelyard.api.oci import blobs, discovery, manifests, uploads
from modelyard.api.oci.access import CHALLENGED, ChallengeMemory, authorize
from modelyard.api.oci.common import expect_continue_later
from modelyard.api.oci.direct_send import BLOB_SENDER, BlobSender
from modelyard.api.oci.routing import Endpoint, V2Route, parse_v2_path
from modelyard.domain.errors import ErrorCode

V2Handler = Callable[[web.Request, V2Route], Awaitable[web.StreamResponse]]

ROUTES: dict[Endpoint, dict[str, V2Handler]] = {
    Endpoint.BASE: {"GET": discovery.base, "HEAD": discovery.base},
    Endpoint.CATALOG: {"GET": discovery.catalog},
    Endpoint.TAGS: {"GET": discovery.tags_list},
    Endpoint.REFERRERS: {"GET": discovery.referrers},
    Endpoint.MANIFEST: {
        "GET": manifests.get_manifest,
        "HEAD": manifests.get_manifest,
        "PUT": manifests.put_manifest,
        "DELETE": manifests.delete_manifest,
    },
    Endpoint.BLOB: {"GET": blobs.get_blob, "HEAD": blobs.get_blob, "DELETE": blobs.delete_blob},
    Endpoint.UPLOAD_START: {"POST": uploads.start_upload},
    Endpoint.UPLOAD: {
        "GET": uploads.get_upload,
        "PATCH": uploads.patch_upload,
        "PUT": uploads.put_upload,
        "DELETE": uploads.delete_upload,
    },
}


async def dispatch(request: web.Request) -> web.StreamResponse:
    route = parse_v2_path(request.path)
    methods = ROUTES[route.endpoint]
    handler = methods.get(request.method)
    if handler is None:
        raise HttpError(
            ErrorCode.UNSUPPORTED,
            f"{request.method} is not supported here; allowed: {', '.join(methods)}",
            status=405,
            headers={"Allow": ", ".join(methods)},
        )
    await authorize(request, route)
    response = await handler(request, route)
    response.headers.update(API_VERSION_HEADER)
    return response


def add_routes(app: web.Application) -> None:
    app[CHALLENGED] = ChallengeMemory()
    sender = app[BLOB_SENDER] = BlobSender.from_settings(app[REGISTRY].settings)

    async def stop_sender(_app: web.Application) -> None:
        sender.shutdown()

    app.on_cleanup.append(stop_sender)
    app.router.add_route("*", "/v2", dispatch, expect_handler=expect_continue_later)
    # ``[\s\S]``, not ``.``: a name, tag or digest with a newline (``%0A``) must reach the
    # grammar checks (``NAME_INVALID`` ...), not fall through to a 404 ``UNSUPPORTED``.
    app.router.add_route("*", r"/v2/{tail:[\s\S]*}", dispatch, expect_handler=expect_continue_later)
