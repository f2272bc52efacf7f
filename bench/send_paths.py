#!/usr/bin/env python3
"""How fast can one Python process send a page-cached file over loopback, by send method?

An experiment behind the blob GET target (bench/README.md, "Fourth pass"): it serves one file
to ``curl -o /dev/null`` from a bare asyncio server -- no registry code -- and reports MB/s and
the server's CPU seconds per GB for each method:

* ``loop-sendfile``: ``loop.sendfile`` on the event loop (what aiohttp's ``FileResponse`` does);
* ``thread-sendfile``: blocking ``os.sendfile`` from a thread on a duplicate of the socket;
* ``thread-write``: ``readv`` into a reused buffer and blocking ``sendall`` from a thread, the
  shape of CNCF Distribution 2.8.2's download (``io.Copy``: 32 KiB ``write`` calls, ``strace``);
* ``thread-write-poll``: the same on the socket left non-blocking, waiting with ``poll``.

    .venv/bin/python bench/send_paths.py --file /tmp/modelyard-bench/blob-2GiB.bin --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

GB = 1e9
METHODS = {
    "loop-sendfile": (0,),
    "thread-sendfile": (1 << 30, 256 * 1024),
    "thread-write": (32 * 1024, 256 * 1024, 1024 * 1024),
    "thread-write-poll": (32 * 1024, 256 * 1024),
}


def _cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def _send_by_sendfile(sock_fd: int, path: Path, size: int, chunk: int) -> None:
    with open(path, "rb") as source, socket.socket(fileno=os.dup(sock_fd)) as sock:
        sock.setblocking(True)
        offset = 0
        while offset < size:
            sent = os.sendfile(sock.fileno(), source.fileno(), offset, min(chunk, size - offset))
            if not sent:
                return
            offset += sent


def _send_by_write(sock_fd: int, path: Path, chunk: int) -> None:
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as source, socket.socket(fileno=os.dup(sock_fd)) as sock:
        sock.setblocking(True)
        while count := source.readinto(buffer):
            sock.sendall(view[:count])


def _send_by_write_nonblocking(sock_fd: int, path: Path, chunk: int) -> None:
    """As a server must: the socket's descriptor stays non-blocking (its event loop shares the
    flag with every duplicate), so a full socket buffer is waited for with ``poll``."""
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    poller = select.poll()
    fd = os.dup(sock_fd)
    poller.register(fd, select.POLLOUT)
    try:
        with open(path, "rb", buffering=0) as source:
            while count := source.readinto(buffer):
                done = 0
                while done < count:
                    try:
                        done += os.write(fd, view[done:count])
                    except BlockingIOError:
                        poller.poll(250)
    finally:
        os.close(fd)


async def _serve(path: Path, method: str, chunk: int, ready: threading.Event, port: list[int]) -> None:
    size = path.stat().st_size
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        await writer.drain()
        loop = asyncio.get_running_loop()
        fd = writer.get_extra_info("socket").fileno()
        if method == "loop-sendfile":
            with open(path, "rb") as source:
                await loop.sendfile(writer.transport, source, 0, size)
        elif method == "thread-sendfile":
            await loop.run_in_executor(None, _send_by_sendfile, fd, path, size, chunk)
        elif method == "thread-write":
            await loop.run_in_executor(None, _send_by_write, fd, path, chunk)
        else:
            await loop.run_in_executor(None, _send_by_write_nonblocking, fd, path, chunk)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port.append(server.sockets[0].getsockname()[1])
    ready.set()
    async with server:
        await server.serve_forever()


def measure(path: Path, method: str, chunk: int, repeats: int) -> tuple[float, float]:
    """Median MB/s of ``repeats`` downloads, and the server's CPU seconds per GB over all."""
    ready, port = threading.Event(), []
    thread = threading.Thread(
        target=lambda: asyncio.run(_serve(path, method, chunk, ready, port)), daemon=True, name="send-paths-server"
    )
    thread.start()
    ready.wait(10)
    rates = []
    cpu_before = _cpu_seconds()  # this process serves; curl is another process
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", f"http://127.0.0.1:{port[0]}/"], check=True)
        rates.append(path.stat().st_size / (time.perf_counter() - start) / 1e6)
    cpu = _cpu_seconds() - cpu_before
    return statistics.median(rates), cpu / (repeats * path.stat().st_size / GB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, required=True, help="a large file (read it once first: page cache)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'method':16} {'chunk':>9} {'MB/s':>7} {'CPU-s/GB':>9}")
    for method, chunks in METHODS.items():
        for chunk in chunks:
            rate, cpu = measure(args.file, method, chunk, args.repeats)
            shown = "-" if not chunk else f"{chunk >> 20} MiB" if chunk >= 1 << 20 else f"{chunk >> 10} KiB"
            print(f"{method:16} {shown:>9} {rate:7.0f} {cpu:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
