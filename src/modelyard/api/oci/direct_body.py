"""Large upload bodies read straight from the socket by a transfer thread.

aiohttp hands a request body over in the pieces each socket read produced (64-256 KiB): a new
``bytes`` object, a parser callback and an event-loop wake-up per piece. At ~650 MB/s that kept
the event loop ~80 % busy moving bytes it never looks at, and the hashing thread waiting on it
(bench/README.md, step 7). For a plain-HTTP body with a ``Content-Length`` of at least
``upload_direct_min_bytes``, the upload service takes the socket over instead: one thread
receives into a reused buffer, hashes and writes it, and the event loop only waits for the end.

The hand-over, and why it is safe:

* what aiohttp already parsed of the body (buffered in ``request.content``) is handed over
  first; the rest is still in the kernel's socket buffer;
* the event loop stops reading the socket (``pause_reading``) and the connection is marked to
  close after this request (``protocol.close()``, after which aiohttp ignores anything it reads
  from it), so only the thread reads it; the thread reads a duplicate descriptor, so a
  connection closed meanwhile (shutdown) can never hand it another file's bytes;
* the response says ``Connection: close``: aiohttp's parser still counts the bytes read past it
  as a body to come, so the connection cannot carry another request. The client reconnects for
  its next one: one TCP handshake per multi-megabyte body;
* TLS, compressed and chunked bodies keep the normal path, as does anything not on a socket.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Sequence

from aiohttp import hdrs, web

from modelyard import metrics
from modelyard.api.errors import CLOSE_CONNECTION, ClientGoneError
from modelyard.api.oci.common import body_chunks, body_stalled, send_continue
from modelyard.config import Settings
from modelyard.services.uploads import Body, DirectBody

__all__ = ["STOP_POLL_MS", "SocketBody", "TransferStopped", "request_body"]

_BUFFER_BYTES = 1024 * 1024
STOP_POLL_MS = 250  # how soon a transfer thread waiting on its socket notices a stop (server shutdown)


class TransferStopped(Exception):
    """The request was cancelled while a transfer thread moved its body (nobody reads this)."""


def request_body(request: web.Request, settings: Settings) -> Body:
    """An upload request's body: read by a transfer thread when it qualifies, else streamed."""
    length = request.content_length
    minimum = settings.upload_direct_min_bytes
    if minimum and length is not None and length >= minimum and _plain_socket(request):
        return SocketBody(request, length, settings.upload_idle_timeout)
    return body_chunks(request, settings.upload_idle_timeout)


def _plain_socket(request: web.Request) -> bool:
    """A body aiohttp only counts (no TLS, no transfer or content coding) on a real socket."""
    headers = request.headers
    if hdrs.TRANSFER_ENCODING in headers or headers.get(hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
        return False
    transport = request.transport
    if transport is None or transport.is_closing() or transport.get_extra_info("sslcontext") is not None:
        return False
    return transport.get_extra_info("socket") is not None


class SocketBody(DirectBody):
    """One request's body, received by :meth:`pump` from a duplicate of its socket."""

    def __init__(self, request: web.Request, length: int, idle_timeout: float) -> None:
        self._request = request
        self._length = length
        self._idle_timeout = idle_timeout
        self._fd = -1
        self._remaining = 0
        self._received = 0

    async def begin(self) -> Sequence[bytes]:
        request = self._request
        await send_continue(request)
        content = request.content
        head: list[bytes] = []
        # Reading may let aiohttp's parser hand over bytes it held back; all of them land here,
        # synchronously, before anything else can read the socket.
        while piece := content.read_nowait():
            head.append(piece)
        if content.is_eof():
            return head  # all of it had arrived: nothing to take over
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ClientGoneError(f"the client left after {content.total_bytes} of {self._length} body bytes")
        self._fd = os.dup(transport.get_extra_info("socket").fileno())
        request.protocol.close()
        transport.pause_reading()
        request[CLOSE_CONNECTION] = True
        self._remaining = self._length - content.total_bytes
        return head

    def pump(self, sink: Callable[[memoryview], None], stop: threading.Event) -> int:
        remaining = self._remaining
        if not remaining:
            return 0
        view = memoryview(bytearray(min(_BUFFER_BYTES, remaining)))
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        last_data = time.monotonic()
        while remaining:
            if stop.is_set():
                raise TransferStopped
            try:
                count = os.readv(self._fd, [view[: min(len(view), remaining)]])
            except BlockingIOError:
                poller.poll(STOP_POLL_MS)
                if time.monotonic() - last_data > self._idle_timeout:
                    raise body_stalled(self._idle_timeout) from None
                continue
            except ConnectionError as exc:
                raise ClientGoneError(self._gone()) from exc
            if not count:
                raise ClientGoneError(self._gone())
            sink(view[:count])
            remaining -= count
            self._received += count
            last_data = time.monotonic()
        return self._received

    def end(self) -> None:
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        content = self._request.content
        content.total_bytes += self._received  # what the request metrics count as received
        metrics.UPLOAD_DIRECT_BYTES.inc(self._received)
        # The body counts as read, so aiohttp does not wait to drain it before closing.
        content.feed_eof()

    def _gone(self) -> str:
        done = self._length - self._remaining + self._received
        return f"the client closed the connection after {done} of {self._length} body bytes"
