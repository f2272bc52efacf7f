"""Blob downloads copied to the socket by a thread, 32 KiB at a time, instead of ``sendfile``.

``sendfile`` spares the copy from the page cache into the socket, and on a network card that
matters. Over loopback -- a client on the same machine, or a proxy in front of the registry on
the same host -- the receiver has to copy the bytes out again, and reads them faster when they
were just copied by the sender (still in the CPU's cache) than straight from the page cache:
on this project's benchmark machine a page-cached 2 GiB blob went out at 3,267 MB/s and 0.29
server CPU-s/GB copied 32 KiB at a time from a thread, at 1,859 MB/s and 0.50 with
``loop.sendfile`` (``bench/send_paths.py``; bench/README.md, "Fourth pass"). CNCF
Distribution sends blobs the same way (32 KiB ``write`` calls).

How, and what keeps it safe:

* the response's head goes out through aiohttp as usual; the thread starts only once the
  transport has nothing buffered, and writes a duplicate of the socket's descriptor (so a
  connection closed meanwhile can never hand it another socket), which stays non-blocking --
  the event loop shares that flag -- so a full socket buffer is waited for with ``poll``;
* nothing else writes the connection until the handler returns, so it stays usable for the
  client's next request;
* at most ``blob_send_threads`` downloads are copied at once per worker, on a pool of their
  own; beyond that a download is sent with ``sendfile`` on the event loop as before, so a
  cluster pulling at once never waits for a thread, and uploads never wait for downloads;
* a client that reads nothing for ``blob_send_idle_timeout`` seconds, or goes away, ends the
  copy and the connection; a cancelled request (shutdown) stops the thread within 250 ms.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from modelyard import metrics
from modelyard.api.errors import ClientGoneError
from modelyard.api.oci.direct_body import STOP_POLL_MS, TransferStopped
from modelyard.config import Settings

__all__ = ["BLOB_SENDER", "BlobSender"]

CHUNK_BYTES = 32 * 1024  # the fastest size measured (bench/send_paths.py): the copy stays in cache


class BlobSender:
    """The threads that copy blob downloads, and how many may run at once (module docstring)."""

    def __init__(self, threads: int, idle_timeout: float) -> None:
        self._limit = threads
        self._idle_timeout = idle_timeout
        self._busy = 0  # touched only on the event loop's thread
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="modelyard-send") if threads else None

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobSender:
        return cls(settings.blob_send_threads, settings.blob_send_idle_timeout)

    def accepts(self, transport: asyncio.BaseTransport) -> bool:
        """Whether a thread may send on ``transport`` now: one is free, and the connection is a
        plain socket (bytes written to a TLS connection's socket would go out unencrypted) with
        nothing of aiohttp's still waiting to be written before the body."""
        if self._pool is None or self._busy >= self._limit or transport.is_closing():
            return False
        if transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("socket") is None:
            return False
        return isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size() == 0

    async def send(self, transport: asyncio.BaseTransport, source_fd: int, offset: int, count: int) -> None:
        """Copy ``count`` bytes of ``source_fd`` from ``offset`` to the transport's socket.

        The caller checked :meth:`accepts`. Raises :class:`ClientGoneError` (after closing the
        transport) if the client went away or stalled.
        """
        assert self._pool is not None
        sock_fd = os.dup(transport.get_extra_info("socket").fileno())
        stop = threading.Event()
        self._busy += 1
        try:
            done = asyncio.get_running_loop().run_in_executor(
                self._pool, self._copy, source_fd, offset, count, sock_fd, stop
            )
            try:
                # Shielded: a cancelled request must not return while the thread still writes.
                await asyncio.shield(done)
            except BaseException as exc:
                stop.set()
                await asyncio.wait([done])
                transport.close()  # the body was cut short: the connection cannot carry another answer
                if isinstance(exc, ConnectionError | TimeoutError):  # gone (reset, broken pipe) or stalled
                    raise ClientGoneError(str(exc)) from exc
                raise
        finally:
            self._busy -= 1
            os.close(sock_fd)
        metrics.BLOB_SEND_COPIED_BYTES.inc(count)

    def _copy(self, source_fd: int, offset: int, count: int, sock_fd: int, stop: threading.Event) -> None:
        buffer = bytearray(min(CHUNK_BYTES, count))
        view = memoryview(buffer)
        poller = select.poll()
        poller.register(sock_fd, select.POLLOUT)
        sent = 0
        last_progress = time.monotonic()
        while sent < count:
            read = os.preadv(source_fd, [view[: min(len(view), count - sent)]], offset + sent)
            if not read:
                raise RuntimeError(f"the blob file ended after {sent} of {count} bytes")
            written = 0
            while written < read:
                if stop.is_set():
                    raise TransferStopped
                try:
                    written += os.write(sock_fd, view[written:read])
                    last_progress = time.monotonic()
                except BlockingIOError:
                    poller.poll(STOP_POLL_MS)
                    if time.monotonic() - last_progress > self._idle_timeout:
                        raise TimeoutError(
                            f"the client read nothing for {self._idle_timeout:g} s after {sent + written} bytes"
                        ) from None
            sent += read

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


BLOB_SENDER: web.AppKey[BlobSender] = web.AppKey("blob_sender", BlobSender)
