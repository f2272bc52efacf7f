"""Small helpers shared by the benchmark scripts: sizes, commands, a tiny HTTP client."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MB = 1_000_000  # rates are reported in decimal MB/s (as openssl and PERF-NOTES do)
GB = 1_000_000_000

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {
    "": 1, "b": 1,
    "k": KiB, "kib": KiB, "kb": 1000, "ki": KiB,
    "m": MiB, "mib": MiB, "mb": MB, "mi": MiB,
    "g": GiB, "gib": GiB, "gb": GB, "gi": GiB,
    "t": 1024 * GiB, "tib": 1024 * GiB, "tb": 1000 * GB, "ti": 1024 * GiB,
}  # fmt: skip


def parse_size(text: str) -> int:
    """``2GiB``, ``64MiB``, ``512k`` (binary), ``1GB`` (decimal) or a plain byte count."""
    match = _SIZE.match(text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 2GiB, 64MiB, 4096)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CommandError(RuntimeError):
    pass


def run(args: Sequence[str | Path], *, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded by ``timeout``), capturing text output."""
    argv = [str(a) for a in args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"timed out after {timeout:g}s: {' '.join(argv)[:300]}") from exc
    if check and done.returncode != 0:
        command = " ".join(argv)[:300]
        raise CommandError(
            f"exit {done.returncode}: {command}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
        )
    return done


def fetch_token(base_url: str, user: str, password: str, scope: str, service: str = "modelyard") -> str:
    """``GET /auth/token`` with Basic credentials, as docker and crane do; the access token."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request("GET", f"/auth/token?service={quote(service)}&scope={quote(scope)}",
                     headers={"Authorization": basic_header(user, password)})  # fmt: skip
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise CommandError(f"token for {scope} at {base_url}: {resp.status} {body[:300]!r}")
    return str(json.loads(body)["token"])


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def with_query(url: str, **params: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


def header_value(raw_headers: str, name: str) -> str | None:
    """The last value of ``name`` in curl ``-D -`` output (the final response wins)."""
    found = None
    prefix = name.lower() + ":"
    for line in raw_headers.splitlines():
        if line.lower().startswith(prefix):
            found = line.split(":", 1)[1].strip()
    return found


def status_of(raw_headers: str) -> int:
    codes = [int(line.split()[1]) for line in raw_headers.splitlines() if line.startswith("HTTP/")]
    return codes[-1] if codes else 0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Http:
    """A minimal keep-alive HTTP/1.1 client for setup steps (never on a timed path)."""

    base: str
    auth: dict[str, str] = field(default_factory=dict)  # sent with every request (a Bearer token)
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        full = urljoin(self.base, url)
        parts = urlsplit(full)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            try:
                self._conn.request(method, path, body=body, headers={**self.auth, **(headers or {})})
                resp = self._conn.getresponse()
                data = resp.read()
                return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def upload_blob(self, repository: str, data: bytes, digest: str) -> None:
        start = self.request("POST", f"/v2/{repository}/blobs/uploads/", b"", {"Content-Length": "0"})
        if start.status != 202:
            raise CommandError(f"POST upload in {repository}: {start.status} {start.body[:300]!r}")
        put = self.request(
            "PUT",
            with_query(start.headers["location"], digest=digest),
            data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        if put.status != 201:
            raise CommandError(f"PUT blob {digest} in {repository}: {put.status} {put.body[:300]!r}")

    def put_manifest(self, repository: str, reference: str, manifest: bytes, media_type: str) -> None:
        resp = self.request("PUT", f"/v2/{repository}/manifests/{reference}", manifest, {"Content-Type": media_type})
        if resp.status != 201:
            raise CommandError(f"PUT manifest {repository}:{reference}: {resp.status} {resp.body[:300]!r}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
