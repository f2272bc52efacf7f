"""The machine's physical limits, measured in the same run as the registries.

* ``sha256_openssl``: ``openssl speed -evp sha256 -bytes 1048576`` (one core, SHA-NI if present).
* ``sha256_hashlib``: Python ``hashlib.sha256`` fed 1 MiB updates (what a Python server gets).
* ``disk_write_fsync``: ``dd`` of N MiB with ``conv=fsync`` into the work directory (same
  filesystem as the registries' storage).
* ``loopback_sendfile``: one TCP stream on 127.0.0.1, a server process ``socket.sendfile``-ing
  the (page-cached) blob file to a client reading into a 1 MiB buffer.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import time
from pathlib import Path

from common import MB, MiB, run


def sha256_openssl(seconds: int) -> float:
    out = run(["openssl", "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", str(seconds)]).stdout
    # "sha256   1167589.72k" -- in 1000s of bytes per second.
    for line in reversed(out.strip().splitlines()):
        parts = line.split()
        if parts and parts[0].lower().startswith("sha256") and parts[-1].endswith("k"):
            return float(parts[-1][:-1]) * 1000 / MB
    raise RuntimeError(f"cannot parse openssl speed output: {out[-500:]}")


def sha256_hashlib(seconds: float) -> float:
    buffer = os.urandom(MiB)
    hasher = hashlib.sha256()
    done = 0
    start = time.perf_counter()
    while True:
        for _ in range(16):
            hasher.update(buffer)
        done += 16 * MiB
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed / MB


def disk_write_fsync(folder: Path, size: int) -> float:
    target = folder / "dd-fsync.tmp"
    try:
        start = time.perf_counter()
        run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size // MiB}", "conv=fsync", "status=none"])
        elapsed = time.perf_counter() - start
    finally:
        target.unlink(missing_ok=True)
    return (size // MiB) * MiB / elapsed / MB


def _sendfile_server(listener: socket.socket, path: str) -> None:
    conn, _ = listener.accept()
    with conn, open(path, "rb") as handle:
        conn.sendfile(handle)


def loopback_sendfile(path: Path) -> float:
    size = path.stat().st_size
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = multiprocessing.get_context("fork").Process(target=_sendfile_server, args=(listener, str(path)))
    server.start()
    try:
        buffer = bytearray(MiB)
        view = memoryview(buffer)
        received = 0
        with socket.create_connection(listener.getsockname(), timeout=60) as client:
            start = time.perf_counter()
            while count := client.recv_into(view):
                received += count
            elapsed = time.perf_counter() - start
    finally:
        server.join(timeout=60)
        if server.is_alive():
            server.kill()
        listener.close()
    if received != size:
        raise RuntimeError(f"sendfile limit: received {received} of {size} bytes")
    return size / elapsed / MB
