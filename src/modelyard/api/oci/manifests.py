"""``/v2/<name>/manifests/<reference>``: push, pull (with content negotiation) and delete."""

from __future__ import annotations

from aiohttp import web

from modelyard.api.errors import HttpError
from modelyard.api.oci.access import acting, claims_of
from modelyard.api.oci.common import registry_of, send_continue
from modelyard.api.oci.routing import V2Route
from modelyard.domain.digest import is_digest
from modelyard.domain.errors import ErrorCode, ManifestTooLarge
from modelyard.domain.records import ManifestRecord
from modelyard.services.manifests import ManifestService


async def _read_limited(request: web.Request, service: ManifestService) -> bytes:
    """Read a manifest body, refusing (413) as soon as it exceeds the limit."""
    declared = request.content_length
    if declared is not None and declared > service.max_bytes:
        raise ManifestTooLarge(declared, service.max_bytes)
    pieces: list[bytes] = []
    total = 0
    await send_continue(request)
    while chunk := await request.content.readany():
        total += len(chunk)
        if total > service.max_bytes:
            raise ManifestTooLarge(total, service.max_bytes)
        pieces.append(chunk)
    return b"".join(pieces)


def _none_match(header_values: list[str], etag: str) -> bool:
    """Whether ``If-None-Match`` names this manifest: ``*``, or any listed tag, compared weakly
    (``W/"x"`` matches ``"x"``) as RFC 9110 prescribes for this header."""
    for value in header_values:
        for item in value.split(","):
            candidate = item.strip()
            if candidate == "*" or candidate.removeprefix("W/") == etag:
                return True
    return False


async def get_manifest(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``GET``/``HEAD`` by tag or digest; ``If-None-Match`` on the digest answers 304."""
    registry = registry_of(request)
    service = registry.manifests
    # Go clients (containers/image: skopeo, podman) send one ``Accept`` line per media type;
    # per RFC 9110 they mean the same as one comma-separated line.
    accept = ", ".join(request.headers.getall("Accept", [])) or None

    def lookup() -> ManifestRecord:
        found = service.get(route.name, route.argument)
        return service.negotiate(route.name, found, accept, by_digest=is_digest(route.argument))

    # A proxied repository may fetch or revalidate it upstream first (services/proxy/).
    record = await registry.proxy.manifest(route.name, route.argument, lookup)
    etag = f'"{record.digest}"'
    headers = {"Docker-Content-Digest": record.digest, "ETag": etag}
    if request.method == "GET":  # a pull (a 304 too); HEADs only look. In memory, written in batches.
        registry.lifecycle.pulls.record(route.name, record.digest)
    if _none_match(request.headers.getall("If-None-Match", []), etag):
        return web.Response(status=304, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(record.size)
        headers["Content-Type"] = record.media_type
        return web.Response(headers=headers)
    return web.Response(body=record.content, headers={**headers, "Content-Type": record.media_type})


async def put_manifest(request: web.Request, route: V2Route) -> web.StreamResponse:
    registry = registry_of(request)
    service = registry.manifests
    body = await _read_limited(request, service)
    claims = claims_of(request)
    pushed = await service.put(
        route.name,
        route.argument,
        body,
        request.headers.get("Content-Type"),
        actor=acting(request),
        pushed_by=None if claims is None else claims.subject,
        may_move_tags=claims is None or claims.allows("repository", route.name, "overwrite"),
        tag_limits=None if claims is None else claims.tag_limits(route.name),
    )
    headers = {
        "Location": f"/v2/{route.name}/manifests/{pushed.digest}",
        "Docker-Content-Digest": pushed.digest,
        "Content-Length": "0",
    }
    if pushed.manifest.subject is not None:
        headers["OCI-Subject"] = pushed.manifest.subject.digest
    return web.Response(status=201, headers=headers)


async def delete_manifest(request: web.Request, route: V2Route) -> web.StreamResponse:
    registry = registry_of(request)
    if not registry.settings.delete_enabled:
        raise HttpError(ErrorCode.UNSUPPORTED, "deleting is disabled on this registry", status=405)
    claims = claims_of(request)
    await registry.manifests.delete(
        route.name, route.argument, actor=acting(request), deleted_by=None if claims is None else claims.subject
    )
    return web.Response(status=202, headers={"Content-Length": "0"})
