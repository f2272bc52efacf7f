"""Helpers shared by the ``/v2`` handlers: the registry from the app, bodies, query parameters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import HttpVersion11, web

from modelyard.api.context import REGISTRY, registry_of
from modelyard.api.errors import HttpError
from modelyard.domain.errors import ErrorCode

__all__ = [
    "REGISTRY", "body_chunks", "body_stalled", "expect_continue_later", "has_body", "next_link", "query_limit",
    "registry_of", "send_continue",
]  # fmt: skip


_CONTINUED: web.RequestKey[bool] = web.RequestKey("modelyard.continued", bool)


async def expect_continue_later(request: web.Request) -> None:
    """The ``/v2`` routes' ``Expect`` handler: check the header, but send ``100 Continue`` only
    when the handler first reads the body (:func:`send_continue`), as Go's ``net/http`` does.

    aiohttp's default sends it before the handler runs, inviting a client (curl, .NET, Go with
    ``ExpectContinueTimeout``) to start streaming gigabytes that a refusal -- no permission, a
    quota -- then throws away. Deferred, a refused request is answered before a byte is sent.
    """
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.lower() != "100-continue":
        raise HttpError(ErrorCode.UNSUPPORTED, f"unknown Expect: {expect[:80]}", status=417)


async def send_continue(request: web.Request) -> None:
    """Invite the body of a request that asked to wait (``Expect: 100-continue``), once."""
    if request.get(_CONTINUED) or request.version != HttpVersion11:
        return
    if request.headers.get("Expect", "").lower() == "100-continue":
        request[_CONTINUED] = True
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started (as aiohttp's own handler)


async def body_chunks(request: web.Request, idle_timeout: float) -> AsyncIterator[bytes]:
    """The request body as it arrives, never buffered whole; a body that stalls is abandoned.

    ``readchunk()`` hands over each piece the socket delivered as it is; ``readany()`` would
    join everything buffered into a new ``bytes``: one more copy of every uploaded byte, though
    the pieces are only hashed and written out with ``writev`` (bench/README.md, Results log).
    """
    await send_continue(request)
    content = request.content
    while True:
        try:
            async with asyncio.timeout(idle_timeout):
                chunk, _ = await content.readchunk()
        except TimeoutError:
            raise body_stalled(idle_timeout) from None
        if not chunk:
            if content.at_eof():
                return
            continue  # the end of one chunk of a chunked transfer-encoding: more may follow
        yield chunk


def body_stalled(idle_timeout: float) -> HttpError:
    return HttpError(
        ErrorCode.BLOB_UPLOAD_INVALID,
        f"no body data arrived for {idle_timeout:g} s; the partial chunk was discarded, "
        "resume from the upload's current offset",
        status=408,
    )


def has_body(request: web.Request) -> bool:
    length = request.content_length
    if length is not None:
        return length > 0
    return request.body_exists


_LIMIT_DIGITS = 18


def query_limit(request: web.Request) -> int | None:
    """The ``n`` pagination parameter: absent, or a non-negative integer."""
    raw = request.query.get("n")
    if raw is None or raw == "":
        return None
    # ``isdigit`` alone admits non-ASCII digits: "²" makes ``int`` raise (a 500), others parse.
    if not (raw.isascii() and raw.isdigit()):
        raise HttpError(ErrorCode.UNSUPPORTED, f"n must be a non-negative integer, not {raw[:20]!r}", status=400)
    # Every n past the page maximum means the same; capping also keeps ``int`` away from its
    # 4300-digit conversion limit (another 500).
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= _LIMIT_DIGITS else 10**_LIMIT_DIGITS


def next_link(path: str, limit: int | None, last: str, extra: str = "") -> str:
    """An RFC 5988 ``Link`` header to the next page."""
    from urllib.parse import quote

    n = f"n={limit}&" if limit is not None else ""
    return f'<{path}?{n}last={quote(last, safe="")}{extra}>; rel="next"'
