"""``/v2/<name>/blobs/<digest>``: download (with ``Range``, zero-copy) and delete."""

from __future__ import annotations

from aiohttp import web

from modelyard.api.errors import HttpError
from modelyard.api.oci.access import acting
from modelyard.api.oci.common import registry_of
from modelyard.api.oci.ranges import BlobFileResponse
from modelyard.api.oci.routing import V2Route
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError


async def get_blob(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``GET``/``HEAD``. ``Range`` is served with ``sendfile`` (206/416, see ``ranges.py``)."""
    registry = registry_of(request)
    digest = Digest.parse(route.argument)
    info = await registry.read(registry.blobs.stat, route.name, digest)
    headers = {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Cache-Control": "max-age=31536000, immutable",
    }
    if info.path is None:  # pragma: no cover - every backend today is local
        raise RegistryError(ErrorCode.UNSUPPORTED, "this storage backend cannot serve blobs directly")
    return BlobFileResponse(info.path, digest=str(digest), size=info.size, headers=headers)


async def delete_blob(request: web.Request, route: V2Route) -> web.StreamResponse:
    registry = registry_of(request)
    if not registry.settings.delete_enabled:
        raise HttpError(ErrorCode.UNSUPPORTED, "deleting is disabled on this registry", status=405)
    await registry.blobs.delete(route.name, Digest.parse(route.argument), actor=acting(request))
    return web.Response(status=202, headers={"Content-Length": "0"})
