"""``/v2/<name>/blobs/<digest>``: download (with ``Range``; ``ranges.py``, ``direct_send.py``) and delete."""

from __future__ import annotations

from aiohttp import web

from modelyard.api.errors import API_VERSION_HEADER, HttpError
from modelyard.api.oci.access import acting
from modelyard.api.oci.common import registry_of
from modelyard.api.oci.ranges import BlobFileResponse, plan_range
from modelyard.api.oci.routing import V2Route
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.services.blobs import BlobInfo


async def get_blob(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``GET``/``HEAD``, with ``Range`` (206/416, see ``ranges.py``)."""
    registry = registry_of(request)
    digest = Digest.parse(route.argument)
    try:
        info = await registry.read(registry.blobs.stat, route.name, digest)
    except RegistryError as exc:
        if exc.code is not ErrorCode.BLOB_UNKNOWN:
            raise
        # A proxied repository fetches it upstream (services/proxy/); any other re-raises.
        info = await registry.proxy.blob(route.name, digest, exc, body=request.method == "GET")
    headers = {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Cache-Control": "max-age=31536000, immutable",
    }
    if info.path is not None:
        return BlobFileResponse(info.path, digest=str(digest), size=info.size, headers=headers)
    if info.redirect is not None and request.method == "GET":
        # An object store serves the bytes (and any Range) itself; HEAD is answered here.
        return web.Response(status=307, headers={**headers, "Location": info.redirect, "Content-Length": "0"})
    return await _stream(request, info, headers)


async def _stream(request: web.Request, info: BlobInfo, headers: dict[str, str]) -> web.StreamResponse:
    """The blob streamed through the registry from a store that is not local, ``Range`` as
    ``BlobFileResponse`` answers it (one range, 206/416, ``If-Range`` on the digest ETag)."""
    etag = f'"{info.digest}"'
    # Sent before the dispatcher could add its headers: the API version goes along here.
    headers = {**headers, **API_VERSION_HEADER, "ETag": etag, "Accept-Ranges": "bytes"}
    planned = plan_range(request, info.size, etag)
    if planned is False:
        headers.update({"Content-Range": f"bytes */{info.size}", "Content-Length": "0"})
        return web.Response(status=416, headers=headers)
    start, end = planned if isinstance(planned, tuple) else (0, info.size)
    registry = registry_of(request)
    source = info.pieces or (lambda start, end: registry.blobs.stream(info.digest, start, end))
    pieces = source(start, end) if request.method == "GET" and end > start else None
    first = await anext(pieces, b"") if pieces is not None else b""  # a missing blob fails before the answer
    response = web.StreamResponse(status=206 if isinstance(planned, tuple) else 200, headers=headers)
    response.content_length = end - start
    if isinstance(planned, tuple):
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
    await response.prepare(request)
    if pieces is not None:
        await response.write(first)
        try:
            async for piece in pieces:
                await response.write(piece)
        except RegistryError:
            # The answer is under way (a pull-through download that failed its digest check):
            # break the connection off, so the client sees a short body -- never an error
            # document appended to the bytes it was counting.
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response


async def delete_blob(request: web.Request, route: V2Route) -> web.StreamResponse:
    registry = registry_of(request)
    if not registry.settings.delete_enabled:
        raise HttpError(ErrorCode.UNSUPPORTED, "deleting is disabled on this registry", status=405)
    await registry.blobs.delete(route.name, Digest.parse(route.argument), actor=acting(request))
    return web.Response(status=202, headers={"Content-Length": "0"})
