"""Blob downloads with ``Range`` as RFC 9110 (section 14) words it, over aiohttp's ``FileResponse``.

``FileResponse`` serves byte ranges and is kept (its body goes out through a copying thread
when one is free, ``direct_send.py``, else with its ``sendfile``); but a few of its answers
differ from the RFC, so :class:`BlobFileResponse` settles them before it sees the request:

- ``Range: bytes=-0`` asks for the last zero bytes: unsatisfiable, **416** (RFC 9110 14.1.1:
  a suffix range is satisfiable only with a non-zero length). ``FileResponse`` sent the whole
  blob as a 206.
- an empty ``Range`` header, or one in a unit other than ``bytes``, is **ignored**: 200 with the
  whole blob (14.2: a server MUST ignore a range unit it does not understand). ``FileResponse``
  answered 416.
- ``If-Range`` (13.1.5): the range is served only if the validator matches exactly -- an entity
  tag by strong comparison with the ``ETag`` the blob is served with (or its digest, the
  strongest validator there is), a date equal to its ``Last-Modified``; anything else, a weak
  tag included, means the client's copy is stale and it gets the **whole blob** (200).
  ``FileResponse`` only knew dates, read a tag as no condition and served the range.

Other syntax (``bytes=5-2``, several ranges) stays ``FileResponse``'s: 416, which the RFC
allows for ranges a server rejects.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict

from modelyard.api.oci.direct_send import BLOB_SENDER

_ZERO_SUFFIX = re.compile(r"^\s*-\s*0+\s*$")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class _Plan(enum.Enum):
    AS_ASKED = "as asked"  # let FileResponse serve the Range (If-Range already settled)
    WHOLE = "whole"  # ignore the Range: 200 with the whole blob
    UNSATISFIABLE = "unsatisfiable"  # 416


class BlobFileResponse(web.FileResponse):
    """A blob file, with ``Range`` and ``If-Range`` answered per RFC 9110 (module docstring)."""

    def __init__(self, path: Path, *, digest: str, size: int, headers: Mapping[str, str]) -> None:
        super().__init__(path, headers=headers)
        self._blob_path = path
        self._digest = digest
        self._size = size

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            # Already sent (a middleware prepares and finishes responses to time them): aiohttp
            # prepares every response again after the handler, and FileResponse.prepare is not
            # idempotent -- it would send the file a second time into a finished response, fail,
            # and close the keep-alive connection under the client's next request.
            return await web.StreamResponse.prepare(self, request)
        plan = await self._plan(request)
        if plan is _Plan.UNSATISFIABLE:
            self.set_status(416)
            self.headers[hdrs.CONTENT_RANGE] = f"bytes */{self._size}"
            self.content_length = 0
            return await web.StreamResponse.prepare(self, request)
        if hdrs.IF_RANGE in request.headers or plan is _Plan.WHOLE:
            # FileResponse reads the headers itself: hand it a copy with the settled ones removed.
            headers = CIMultiDict(request.headers)
            headers.popall(hdrs.IF_RANGE, None)
            if plan is _Plan.WHOLE:
                headers.popall(hdrs.RANGE, None)
            request = request.clone(headers=headers)
        return await super().prepare(request)

    async def _sendfile(self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int) -> AbstractStreamWriter:
        """The body copied by a thread when one is free (``direct_send.py``), else ``sendfile``."""
        sender = request.app.get(BLOB_SENDER) if isinstance(request, web.Request) else None
        writer = await web.StreamResponse.prepare(self, request)  # the head, as FileResponse sends it
        assert writer is not None
        transport = request.transport
        if sender is None or self.compression or transport is None or not sender.accepts(transport):
            return await super()._sendfile(request, fobj, offset, count)  # its prepare is a no-op now
        await sender.send(transport, fobj.fileno(), offset, count)
        await web.StreamResponse.write_eof(self)
        return writer

    async def _plan(self, request: web.BaseRequest) -> _Plan:
        value = request.headers.get(hdrs.RANGE)
        if value is None:
            return _Plan.AS_ASKED
        unit, equals, ranges = value.partition("=")
        if not equals or unit.strip().lower() != "bytes":
            return _Plan.WHOLE  # empty, or a unit we do not serve: ignored
        condition = request.headers.get(hdrs.IF_RANGE)
        if condition is not None and not await self._validator_matches(condition.strip()):
            return _Plan.WHOLE
        if _ZERO_SUFFIX.match(ranges):
            return _Plan.UNSATISFIABLE
        return _Plan.AS_ASKED

    async def _validator_matches(self, condition: str) -> bool:
        """Whether an ``If-Range`` validator names the blob as it is served (RFC 9110 13.1.5)."""
        if condition == f'"{self._digest}"':
            return True
        try:
            stat = await asyncio.get_running_loop().run_in_executor(None, os.stat, self._blob_path)
        except OSError:
            return False  # FileResponse will answer for the missing file
        if condition.startswith('"'):
            # The ETag FileResponse sends (mtime and size in hex): strong comparison.
            return condition == f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if condition.startswith("W/"):
            return False  # a weak tag never matches (strong comparison)
        try:
            date = email.utils.parsedate_to_datetime(condition)
        except (TypeError, ValueError):
            return False
        # Exactly the Last-Modified FileResponse sends (the mtime rounded up to a second).
        return date.tzinfo is not None and int(date.timestamp()) == math.ceil(stat.st_mtime)


def plan_range(request: web.BaseRequest, size: int, etag: str) -> tuple[int, int] | bool | None:
    """``(start, end)`` to serve (end exclusive), ``None`` for the whole file, ``False`` for 416."""
    value = request.headers.get(hdrs.RANGE)
    if value is None:
        return None
    condition = request.headers.get(hdrs.IF_RANGE)
    if condition is not None and condition.strip() != etag:
        return None
    match = _RANGE.match(value)
    if match is None:
        return None  # another unit, several ranges, or malformed: ignored (RFC 9110 14.2)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            return False
        return max(size - count, 0), size
    start = int(first)
    if start >= size:
        return False
    end = size if not last else min(int(last) + 1, size)
    if end <= start:
        return None  # bytes=5-2: invalid, ignored
    return start, end
