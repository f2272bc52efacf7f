"""``modelyard serve`` as a process: TLS noise on the plain port, several workers, start-up errors."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.conftest import ServerFactory
from tests.interop.serverproc import ServerProcess, free_port, serve_command

pytestmark = pytest.mark.interop


def request(
    server: ServerProcess, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPMessage]:
    """One request on a fresh connection (so that, with several workers, any of them may answer)."""
    connection = http.client.HTTPConnection(server.host, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


def client_hello() -> bytes:
    """The bytes a TLS client sends first, produced by Python's own TLS stack (no network)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16", "not a TLS handshake record"
    return hello


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_tls_client_hello_on_plain_port_is_refused_and_server_keeps_serving(server: ServerProcess) -> None:
    hello = client_hello()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(hello)
            answer = read_until_closed(sock)  # the server must close, not wait for more
        # aiohttp recognises the handshake and answers a plain 400 before closing.
        assert answer == b"" or re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:200]

    # What skopeo/podman do with TLS verification off: a real handshake attempt first.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")

    status, body, _ = request(server, "GET", "/v2/")
    assert (status, body) == (200, b"{}")
    assert server.process is not None and server.process.poll() is None
    assert "Traceback" not in server.log()


def worker_pids(server: ServerProcess) -> list[int]:
    """The worker processes ``--workers`` spawned (children of the server running spawn_main)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server.pid and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


def listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN state on 127.0.0.1:``port`` (one per worker with ``SO_REUSEPORT``)."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


def bytes_written(pid: int) -> int:
    """``wchar`` from ``/proc/<pid>/io``: every byte the process wrote (upload files, database, sockets)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no wchar in /proc/{pid}/io")


def test_chunked_upload_continues_across_worker_processes(server_factory: ServerFactory) -> None:
    server = server_factory("--workers", "2", "--no-access-log")
    deadline = time.monotonic() + 15
    while listening_sockets(server.port) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_sockets(server.port) == 2, "both workers should listen on the port (SO_REUSEPORT)"
    workers = worker_pids(server)
    assert len(workers) == 2, f"expected 2 workers, found {workers}"
    for _ in range(20):  # warm both workers up (lazy imports) before measuring what they write
        assert request(server, "GET", "/v2/acme/sharded/tags/list")[0] == 404
    before = {pid: bytes_written(pid) for pid in workers}

    chunk_size, chunks = 256 * 1024, 48
    blob = os.urandom(chunk_size * chunks + 1000)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    status, _, headers = request(server, "POST", "/v2/acme/sharded/blobs/uploads/")
    assert status == 202
    location = headers["Location"]
    offset = 0
    for number in range(chunks):
        piece = blob[offset : offset + chunk_size]
        status, body, headers = request(
            server,
            "PATCH",
            location,
            piece,
            {"Content-Range": f"{offset}-{offset + len(piece) - 1}", "Content-Type": "application/octet-stream"},
        )
        assert status == 202, (number, body)
        offset += len(piece)
        assert headers["Range"] == f"0-{offset - 1}"
        location = headers["Location"]
        if number % 8 == 0:
            status, _, headers = request(server, "GET", location)
            assert (status, headers["Range"]) == (204, f"0-{offset - 1}")

    # Both workers took part: each wrote a good share of the chunks to the upload file (a worker
    # that only answered status requests writes nothing; measured before the download, whose
    # sendfile would count as written too).
    share = {pid: bytes_written(pid) - before[pid] for pid in workers}
    assert all(written >= 4 * chunk_size for written in share.values()), share

    last = blob[offset:]
    status, body, headers = request(
        server, "PUT", f"{location}?digest={digest}", last, {"Content-Range": f"{offset}-{len(blob) - 1}"}
    )
    assert status == 201, body
    assert headers["Docker-Content-Digest"] == digest

    status, body, _ = request(server, "GET", f"/v2/acme/sharded/blobs/{digest}")
    assert status == 200
    assert body == blob


def run_serve(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    return subprocess.run(
        args, check=False, capture_output=True, text=True, timeout=timeout, env={**clean, **(env or {})}
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert "Traceback" not in output and "╭" not in output, output
    error_lines = [line for line in output.splitlines() if line.startswith("modelyard:") or " ERROR " in line]
    assert len(error_lines) == 1, output
    for needle in needles:
        assert needle in error_lines[0], output


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        (("--port", "99999"), {}, ("'port'", "65535")),
        (("--workers", "0"), {}, ("'workers'",)),
        ((), {"MODELYARD_PORT": "70000"}, ("'port'",)),
        ((), {"MODELYARD_LOG_LEVEL": "chatty"}, ("'log_level'",)),
    ],
)
def test_bad_setting_is_one_line_not_a_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], needles: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "data"
    result = run_serve(*serve_command(free_port(), data_dir), *args, env=env)
    assert_one_line_error(result, *needles)
    assert not data_dir.exists(), "a rejected configuration must not touch the data directory"


def test_port_in_use_is_one_line_not_a_traceback(server: ServerProcess, tmp_path: Path) -> None:
    for workers in ("1", "2"):
        result = run_serve(*serve_command(server.port, tmp_path / f"data{workers}"), "--workers", workers)
        assert_one_line_error(result, f"127.0.0.1:{server.port}", "in use")
    status, _, _ = request(server, "GET", "/v2/")
    assert status == 200


def test_unusable_data_dir_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_serve(*serve_command(free_port(), blocker / "data"))
    assert_one_line_error(result, "'data_dir'", str(blocker / "data"))


def test_one_worker_serves_from_a_lean_process_with_the_same_pid(server: ServerProcess) -> None:
    """With one worker, ``modelyard serve`` execs ``python -m modelyard.serving``: the PID a
    supervisor started (and signals) serves, without the CLI's modules or its start-up peaks."""
    command = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert command[1:3] == [b"-m", b"modelyard.serving"], command
    # The settings (secrets included) came through an inherited pipe, not the command line.
    assert all(b"--data-dir" not in part for part in command)
    status, _, _ = request(server, "GET", "/v2/")
    assert status == 200
