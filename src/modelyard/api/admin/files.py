"""Serving one file of a model version, with ``Range`` and the layer digest as ``ETag``.

Three ways, by where the file sits:

- a raw layer in a local store: ``sendfile`` through :class:`BlobFileResponse` (``ranges.py``
  answers ``Range`` and ``If-Range`` per RFC 9110), with the ``ETag`` set to the layer digest;
- a member of an uncompressed tar layer: a ranged read of the layer at the member's offset
  (computed at push time, ``services/models/tarindex.py``);
- a member of a gzip tar layer: the layer decompressed as a stream up to the member.

The same rules hold for all three: one ``bytes`` range (``a-b``, ``a-``, ``-n``) is served as
206 with ``Content-Range``; a range past the end, or ``-0``, is 416; anything else in ``Range``
(another unit, several ranges) is ignored and the whole file sent; ``If-Range`` serves the range
only for the current ``ETag``; ``If-None-Match`` with it answers 304.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web

from modelyard.api.oci.ranges import BlobFileResponse, plan_range
from modelyard.services.models import FileAccess, ModelService


class _LayerFileResponse(BlobFileResponse):
    """``BlobFileResponse`` whose ``ETag`` is the given one (the layer digest, or the file's
    sha256 for the Hub API), not the file's mtime and size."""

    def __init__(self, access: FileAccess, headers: dict[str, str], etag: str) -> None:
        assert access.local_path is not None
        super().__init__(access.local_path, digest=etag, size=access.file.size, headers=headers)
        self._digest_etag = etag

    @property
    def etag(self) -> Any:
        return web.StreamResponse.etag.fget(self)  # type: ignore[attr-defined]

    @etag.setter
    def etag(self, _value: Any) -> None:  # FileResponse sets its own: keep the digest
        web.StreamResponse.etag.fset(self, self._digest_etag)  # type: ignore[attr-defined]


def _etag_listed(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


async def respond(
    request: web.Request,
    access: FileAccess,
    models: ModelService,
    *,
    entity_tag: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Serve the file; its ``ETag`` is ``entity_tag`` (unquoted) if given, else the layer digest,
    and ``extra_headers`` go on every answer (the Hub API's ``X-Repo-Commit``, ...)."""
    file = access.file
    entity_tag = entity_tag or file.layer_digest
    etag = f'"{entity_tag}"'
    content_type = mimetypes.guess_type(file.path)[0] or "application/octet-stream"
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0, must-revalidate",
        "Docker-Content-Digest": file.layer_digest,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.path.rsplit('/', 1)[-1])}",
        **(extra_headers or {}),
    }
    if _etag_listed(request.headers.get(hdrs.IF_NONE_MATCH), etag):
        return web.Response(status=304, headers={**(extra_headers or {}), "ETag": etag})
    if access.local_path is not None:
        return _LayerFileResponse(access, headers, entity_tag)
    planned = plan_range(request, file.size, etag)
    if planned is False:
        return web.Response(
            status=416,
            headers={**headers, "Content-Range": f"bytes */{file.size}", "ETag": etag, "Content-Length": "0"},
        )
    start, end = planned if isinstance(planned, tuple) else (0, file.size)
    response = web.StreamResponse(status=206 if isinstance(planned, tuple) else 200, headers={**headers, "ETag": etag})
    response.content_length = end - start
    if isinstance(planned, tuple):
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
    await response.prepare(request)
    if request.method != "HEAD":
        async for piece in models.read(access, start, end):
            await response.write(piece)
    await response.write_eof()
    return response
