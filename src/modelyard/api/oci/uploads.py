"""``/v2/<name>/blobs/uploads/``: start, mount, chunk, status, commit and cancel uploads."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid

from aiohttp import web

from modelyard.api.errors import HttpError
from modelyard.api.headers import upload_headers
from modelyard.api.oci.access import claims_of
from modelyard.api.oci.common import has_body, registry_of
from modelyard.api.oci.direct_body import request_body
from modelyard.api.oci.routing import V2Route
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.records import UploadRecord
from modelyard.domain.reference import validate_name
from modelyard.services.uploads import ContentRange

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def _parse_content_range(value: str | None) -> ContentRange | None:
    if value is None:
        return None
    match = _CONTENT_RANGE.match(value.strip())
    if match is None:
        raise HttpError(
            ErrorCode.BLOB_UPLOAD_INVALID,
            f"Content-Range {value[:80]!r} is not of the form '<start>-<end>' (inclusive bytes)",
            status=416,
        )
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise HttpError(ErrorCode.BLOB_UPLOAD_INVALID, f"Content-Range {value!r} ends before it starts", status=416)
    return ContentRange(start, end)


def _owner(request: web.Request) -> str | None:
    """The principal an upload belongs to (``None`` when auth is disabled)."""
    claims = claims_of(request)
    return None if claims is None else claims.subject


def _may_read(request: web.Request, source: str | None) -> bool:
    """A mount needs read access to where the blob comes from (any repository if unnamed).

    Without a named source only callers who may read every repository can mount, since the
    blob could come from one they cannot see.
    """
    claims = claims_of(request)
    if claims is None:
        return True
    if source is None:
        return False
    return claims.allows("repository", source, "pull")


def _upload_id(route: V2Route) -> str:
    """Upload ids are UUIDs; anything else cannot name a session (nor a path on disk)."""
    try:
        return str(uuid.UUID(route.argument))
    except ValueError:
        raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, f"{route.argument[:80]!r} is not an upload id") from None


def _session_response(
    status: int, repository: str, record: UploadRecord, extra: dict[str, str] | None = None
) -> web.Response:
    headers = {**upload_headers(repository, record.id, record.offset), "Content-Length": "0", **(extra or {})}
    return web.Response(status=status, headers=headers)


def _created(repository: str, digest: Digest) -> web.Response:
    return web.Response(
        status=201,
        headers={
            "Location": f"/v2/{repository}/blobs/{digest}",
            "Docker-Content-Digest": str(digest),
            "Content-Length": "0",
        },
    )


async def start_upload(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``POST``: mount (``?mount=&from=``), single-request upload (``?digest=``) or a new session."""
    registry = registry_of(request)
    query = request.query
    owner = _owner(request)
    if "mount" in query:
        digest = Digest.parse(query["mount"])
        source = query.get("from") or None
        if source is not None:
            validate_name(source)
        if _may_read(request, source) and await registry.uploads.mount(route.name, digest, source, owner) is not None:
            return _created(route.name, digest)
    if "digest" in query:
        digest = Digest.parse(query["digest"])
        # The declared size meets the quotas before a byte of the body is read.
        record = await registry.uploads.start(route.name, owner, declared=request.content_length, digest=digest)
        body = request_body(request, registry.settings)
        try:
            await registry.uploads.commit(route.name, record.id, digest, body, None, owner)
        except BaseException:
            # No client knows this session's id, so nobody could resume or cancel it: drop it
            # (and its bytes) here, or every failed single POST would leak disk for good.
            with contextlib.suppress(RegistryError):
                await asyncio.shield(registry.uploads.cancel(route.name, record.id, owner))
            raise
        return _created(route.name, digest)
    record = await registry.uploads.start(route.name, owner)
    return _session_response(202, route.name, record, {"OCI-Chunk-Min-Length": str(registry.settings.chunk_min_length)})


async def patch_upload(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``PATCH``: append a chunk; out of order is 416 with the current ``Range``."""
    registry = registry_of(request)
    content_range = _parse_content_range(request.headers.get("Content-Range"))
    record = await registry.uploads.append(
        route.name,
        _upload_id(route),
        request_body(request, registry.settings),
        content_range,
        _owner(request),
        declared=request.content_length,
    )
    return _session_response(202, route.name, record)


async def put_upload(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``PUT ?digest=``: close the session, with an optional final chunk."""
    registry = registry_of(request)
    upload_id = _upload_id(route)
    raw_digest = request.query.get("digest")
    if not raw_digest:
        raise RegistryError(ErrorCode.DIGEST_INVALID, "closing an upload needs ?digest=<digest of the whole blob>")
    digest = Digest.parse(raw_digest)
    content_range = _parse_content_range(request.headers.get("Content-Range"))
    body = request_body(request, registry.settings) if has_body(request) else None
    if body is None and content_range is not None:
        # Content-Range describes the final chunk in the body ("if present", says the spec):
        # without one it announces bytes that never come, and closing would ignore them.
        raise RegistryError(
            ErrorCode.SIZE_INVALID,
            f"Content-Range {content_range.start}-{content_range.end} announces a final chunk of "
            f"{content_range.length} bytes but the request has no body; send the chunk, or close the "
            "upload without Content-Range",
            detail={"content_range": f"{content_range.start}-{content_range.end}", "body": 0},
        )
    declared = request.content_length if body is not None else None
    await registry.uploads.commit(route.name, upload_id, digest, body, content_range, _owner(request), declared)
    return _created(route.name, digest)


async def get_upload(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``GET``: where the upload stands (204 with ``Range``)."""
    registry = registry_of(request)
    record = await registry.read(registry.uploads.session, route.name, _upload_id(route), _owner(request))
    return _session_response(204, route.name, record)


async def delete_upload(request: web.Request, route: V2Route) -> web.StreamResponse:
    registry = registry_of(request)
    await registry.uploads.cancel(route.name, _upload_id(route), _owner(request))
    return web.Response(status=204)
