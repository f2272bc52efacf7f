"""The workloads. Each has an untimed ``setup`` (what must already be in the registry) and a timed
``run`` returning its metrics; :func:`measure` wraps ``run`` with the server's CPU and peak RSS.

Clients are the real tools: ``curl -T`` for uploads (streams the file; never ``--data-binary @``),
``curl -o /dev/null`` for downloads, ``wrk`` for request rates, ``skopeo copy`` for image push/pull.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin

from common import (
    GB,
    MB,
    OCI_MANIFEST,
    CommandError,
    Http,
    basic_header,
    header_value,
    log,
    run,
    status_of,
    with_query,
)
from inputs import BlobFile, ImageInfo, small_image
from registries import Server

Metrics = dict[str, float]


@dataclass
class Context:
    """Everything the workloads need: inputs on disk and the knobs from the command line."""

    work: Path
    blob: BlobFile
    chunks: list[Path]
    chunk_size: int
    big: BlobFile | None
    model_layout: Path | None
    model: ImageInfo | None
    parallel_layout: Path | None
    parallel: list[ImageInfo] = field(default_factory=list)
    wrk_seconds: float = 5
    wrk_threads: int = 2
    wrk_connections: int = 32
    tags: int = 10
    curve: BlobFile | None = None  # blob of the concurrency-curve workloads (upload-xN, blob-get-xN)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool


@dataclass(frozen=True)
class Workload:
    name: str
    concurrent: bool  # served by the multi-worker modelyard instance
    description: str
    metrics: tuple[Metric, ...]
    run: Callable[[Context, Server], Metrics]
    setup: Callable[[Context, Server], None] = lambda ctx, server: None
    registries: tuple[str, ...] = ("distribution", "modelyard")  # the token endpoint: modelyard only


MBPS = Metric("MBps", "MB/s", True)
CPU_GB = Metric("cpu_s_per_GB", "server CPU-s/GB", False)
CPU_REQ = Metric("cpu_ms_per_req", "server CPU-ms/req", False)
RSS = Metric("peak_rss_mib", "server peak RSS MiB", False)
RSS_MAX = Metric("peak_rss_max_mib", "peak RSS/worker MiB", False)
REQS = Metric("req_s", "req/s", True)
P99 = Metric("p99_ms", "p99 latency ms", False)


def measure(server: Server, work: Callable[[], Metrics]) -> Metrics:
    """Run ``work`` with the server's CPU time and peak RSS measured around it.

    ``os.sync()`` first, so the previous run's dirty pages are not written back on this one's time.
    ``work`` returns its metrics plus ``_bytes`` or ``_requests`` to divide the CPU time by.
    """
    os.sync()
    server.refresh_pids()
    server.reset_peak_rss()
    cpu_before = server.cpu_seconds()
    metrics = work()
    cpu = server.cpu_seconds() - cpu_before
    metrics["server_cpu_s"] = cpu
    metrics["peak_rss_mib"] = server.peak_rss_mib()
    metrics["peak_rss_max_mib"] = server.peak_rss_max_mib()
    if "_bytes" in metrics:
        metrics["cpu_s_per_GB"] = cpu / (metrics.pop("_bytes") / GB)
    if "_requests" in metrics:
        metrics["cpu_ms_per_req"] = cpu * 1000 / metrics.pop("_requests")
    return metrics


# -- curl-driven blob transfers ------------------------------------------------------------------

_CURL = ["curl", "-sS", "--noproxy", "*", "--max-time", "900"]


def _auth(server: Server, repository: str, actions: str = "pull,push") -> list[str]:
    """curl ``-H`` arguments authorizing one request on ``repository`` (none without auth). Timed:
    crane-style servers fetch a fresh token here, before every request, as crane does."""
    headers = server.auth_headers(f"repository:{repository}:{actions}", per_request=True)
    return [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]


def _start_upload(server: Server, repository: str) -> str:
    out = run([*_CURL, "-X", "POST", "-H", "Content-Length: 0", "-D", "-", "-o", "/dev/null",
               *_auth(server, repository), f"{server.base_url}/v2/{repository}/blobs/uploads/"]).stdout  # fmt: skip
    location = header_value(out, "Location")
    if status_of(out) != 202 or not location:
        raise CommandError(f"{server.label}: POST upload answered {status_of(out)}: {out[:500]}")
    return urljoin(server.base_url, location)


def _put_file(server: Server, repository: str, url: str, path: Path | None) -> None:
    """``PUT`` the upload closed, streaming ``path`` as its body (``curl -T``), or with no body."""
    body = ["-T", str(path), "-H", "Content-Type: application/octet-stream"] if path else ["-H", "Content-Length: 0"]
    # "Expect:" turns off curl's 100-continue handshake (a possible 1 s stall on either server).
    out = run([*_CURL, "-X", "PUT", *body, "-H", "Expect:", *_auth(server, repository), "-o", "/dev/null",
               "-w", "%{http_code}", url]).stdout  # fmt: skip
    if out.strip() != "201":
        raise CommandError(f"{server.label}: PUT {url[:120]} answered {out.strip()}")


def upload_monolithic(server: Server, repository: str, blob: BlobFile) -> float:
    """POST, then PUT ?digest= with the whole file streamed; returns seconds."""
    start = time.perf_counter()
    url = _start_upload(server, repository)
    _put_file(server, repository, with_query(url, digest=blob.digest), blob.path)
    return time.perf_counter() - start


def upload_chunked(server: Server, repository: str, blob: BlobFile, chunks: list[Path]) -> float:
    """POST, one PATCH per chunk file (``Content-Range``), then PUT ?digest= without a body."""
    start = time.perf_counter()
    url = _start_upload(server, repository)
    offset = 0
    for part in chunks:
        size = part.stat().st_size
        out = run([*_CURL, "-X", "PATCH", "-T", str(part), "-H", "Content-Type: application/octet-stream",
                   "-H", f"Content-Range: {offset}-{offset + size - 1}", "-H", "Expect:", *_auth(server, repository),
                   "-D", "-", "-o", "/dev/null", url]).stdout  # fmt: skip
        location = header_value(out, "Location")
        if status_of(out) != 202 or not location:
            raise CommandError(f"{server.label}: PATCH at {offset} answered {status_of(out)}: {out[:500]}")
        url = urljoin(server.base_url, location)
        offset += size
    _put_file(server, repository, with_query(url, digest=blob.digest), None)
    return time.perf_counter() - start


def download(server: Server, repository: str, blob: BlobFile, byte_range: tuple[int, int] | None = None) -> float:
    """GET the blob (or an inclusive byte range of it) into /dev/null; returns seconds."""
    url = f"{server.base_url}/v2/{repository}/blobs/{blob.digest}"
    extra = ["-r", f"{byte_range[0]}-{byte_range[1]}"] if byte_range else []
    expected_status = "206" if byte_range else "200"
    expected_size = byte_range[1] - byte_range[0] + 1 if byte_range else blob.size
    start = time.perf_counter()
    out = run([*_CURL, *extra, *_auth(server, repository, "pull"), "-o", "/dev/null",
               "-w", "%{http_code} %{size_download}", url]).stdout.split()  # fmt: skip
    elapsed = time.perf_counter() - start
    if out != [expected_status, str(expected_size)]:
        raise CommandError(f"{server.label}: GET {url} gave {out}, wanted {expected_status} {expected_size}")
    return elapsed


def _tokens_for(*repositories: str, actions: str = "pull,push") -> Callable[[Context, Server], None]:
    """A setup step fetching the docker-style tokens a workload will use, before it is timed: a
    docker client logs in once, and a first login in a worker runs argon2 (~0.1 s, 64 MiB) --
    on the clock, and in the peak RSS, of whichever workload came first. (Crane-style requests
    fetch theirs on the clock by design.)"""

    def setup(ctx: Context, server: Server) -> None:
        if server.authenticated:
            for repository in repositories:
                server.token(f"repository:{repository}:{actions}")

    return setup


def _ensure_blob(ctx: Context, server: Server) -> None:
    _tokens_for("bench/blob", actions="pull")(ctx, server)
    if "blob" not in server.state:
        log(f"{server.label}: setup upload of the blob for the download workloads")
        upload_monolithic(server, "bench/blob", ctx.blob)
        server.state["blob"] = True


def run_upload_mono(ctx: Context, server: Server) -> Metrics:
    seconds = upload_monolithic(server, "bench/blob", ctx.blob)
    server.state["blob"] = True
    return {"MBps": ctx.blob.size / seconds / MB, "seconds": seconds, "_bytes": ctx.blob.size}


def run_upload_chunked(ctx: Context, server: Server) -> Metrics:
    seconds = upload_chunked(server, "bench/chunked", ctx.blob, ctx.chunks)
    return {"MBps": ctx.blob.size / seconds / MB, "seconds": seconds, "_bytes": ctx.blob.size}


def run_blob_get(ctx: Context, server: Server) -> Metrics:
    seconds = download(server, "bench/blob", ctx.blob)
    return {"MBps": ctx.blob.size / seconds / MB, "seconds": seconds, "_bytes": ctx.blob.size}


def run_range_get(ctx: Context, server: Server) -> Metrics:
    half = ctx.blob.size // 2
    length = ctx.blob.size - half
    seconds = download(server, "bench/blob", ctx.blob, (half, ctx.blob.size - 1))
    return {"MBps": length / seconds / MB, "seconds": seconds, "_bytes": length}


def run_big_transfer(ctx: Context, server: Server) -> Metrics:
    assert ctx.big is not None
    up = upload_monolithic(server, "bench/big", ctx.big)
    down = download(server, "bench/big", ctx.big)
    return {
        "upload_MBps": ctx.big.size / up / MB,
        "download_MBps": ctx.big.size / down / MB,
        "_bytes": 2 * ctx.big.size,
    }


# -- wrk-driven small requests -------------------------------------------------------------------


def _setup_small(ctx: Context, server: Server) -> None:
    _tokens_for("bench/small", actions="pull")(ctx, server)
    if "small" in server.state:
        return
    config, layer, manifest = small_image()
    client = Http(server.base_url, server.auth_headers("repository:bench/small:pull,push"))
    try:
        for data in (config, layer):
            client.upload_blob("bench/small", data, f"sha256:{hashlib.sha256(data).hexdigest()}")
        for index in range(ctx.tags):
            client.put_manifest("bench/small", f"t{index}", manifest, OCI_MANIFEST)
        check = client.request("GET", "/v2/bench/small/manifests/t0", headers={"Accept": OCI_MANIFEST})
        if check.status != 200 or check.body != manifest:
            raise CommandError(f"{server.label}: manifest GET check failed: {check.status}")
    finally:
        client.close()
    server.state["small"] = True


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> Metrics:
    requests = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE)
    if not (requests and rate and p99 and p50):
        raise CommandError(f"cannot parse wrk output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "req_s": float(rate.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "_requests": float(requests.group(1)),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def _wrk_script(ctx: Context, server: Server, path: str, headers: dict[str, str], scope: str) -> Path:
    """A wrk Lua script for crane-style clients: every request is preceded by a token request
    with Basic credentials, so wrk alternates the two on each connection."""

    def table(values: dict[str, str]) -> str:
        return "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in values.items()) + "}"

    token_path = f"/auth/token?service=modelyard&scope={quote(scope)}"
    target = {**headers, "Authorization": f"Bearer {server.token(scope)}"}
    script = ctx.work / f"wrk-crane-{server.port}-{hashlib.sha256(path.encode()).hexdigest()[:12]}.lua"
    script.write_text(
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  if n % 2 == 1 then return wrk.format("GET", "{token_path}", '
        f"{table({'Authorization': basic_header(server.user, server.password)})}) end\n"
        f'  return wrk.format("GET", "{path}", {table(target)})\n'
        "end\n"
    )
    return script


def _wrk(
    ctx: Context, server: Server, path: str, headers: dict[str, str], scope: str | None = None, *, strict: bool = True
) -> Metrics:
    """``wrk`` on ``path``. With auth (``scope`` names what the request needs): docker-style sends
    one token, fetched before the run, with every request; crane-style fetches a token before
    every request (a Lua script alternating the two), and req/s then counts request *pairs*."""
    argv = ["wrk", f"-t{ctx.wrk_threads}", f"-c{ctx.wrk_connections}", f"-d{ctx.wrk_seconds:g}s", "--latency"]
    pairs = False
    if server.authenticated and scope is not None:
        if server.auth == "crane":
            argv += ["-s", str(_wrk_script(ctx, server, path, headers, scope))]
            headers, pairs = {}, True
        else:
            headers = {**headers, "Authorization": f"Bearer {server.token(scope)}"}
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = run([*argv, server.base_url + path], timeout=ctx.wrk_seconds + 60).stdout
    metrics = parse_wrk(out)
    if metrics["non_2xx"] and strict and not pairs:
        raise CommandError(f"{server.label}: {metrics['non_2xx']:g} error responses under wrk on {path}")
    if pairs:
        # One operation = a token request + the request itself. A burst of cold logins may be
        # refused (429, argon2's admission limit): counted in non_2xx, and only successes count.
        metrics["req_s"] *= (1 - metrics["non_2xx"] / max(metrics["_requests"], 1)) / 2
        metrics["_requests"] /= 2
    return metrics


def run_manifest_get(ctx: Context, server: Server) -> Metrics:
    return _wrk(ctx, server, "/v2/bench/small/manifests/t0", {"Accept": OCI_MANIFEST}, "repository:bench/small:pull")


def run_tags_list(ctx: Context, server: Server) -> Metrics:
    return _wrk(ctx, server, "/v2/bench/small/tags/list", {}, "repository:bench/small:pull")


def run_token(ctx: Context, server: Server) -> Metrics:
    """``GET /auth/token`` with the same Basic credentials every time (docker login, crane)."""
    scope = quote("repository:bench/small:pull")
    path = f"/auth/token?service=modelyard&scope={scope}"
    # Not strict: a burst of cold logins may be refused (429) by argon2's admission limit; counted.
    metrics = _wrk(ctx, server, path, {"Authorization": basic_header(server.user, server.password)}, strict=False)
    metrics["req_s"] *= 1 - metrics["non_2xx"] / max(metrics["_requests"], 1)  # successful tokens only
    return metrics


# -- concurrency curves: N clients at once ----------------------------------------------------


def _concurrently(count: int, work: Callable[[int], object]) -> float:
    """Run ``work(i)`` for i in range(count) on as many threads (each drives its own curl)."""
    errors: list[BaseException] = []

    def one(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return seconds


def _upload_curve(count: int) -> Callable[[Context, Server], Metrics]:
    def run_uploads(ctx: Context, server: Server) -> Metrics:
        assert ctx.curve is not None
        blob = ctx.curve
        seconds = _concurrently(count, lambda i: upload_monolithic(server, f"bench/cu-{i}", blob))
        total = count * blob.size
        return {"MBps": total / seconds / MB, "seconds": seconds, "_bytes": total}

    return run_uploads


def _setup_curve_blob(ctx: Context, server: Server) -> None:
    _tokens_for("bench/curve", actions="pull")(ctx, server)
    if "curve" not in server.state:
        assert ctx.curve is not None
        upload_monolithic(server, "bench/curve", ctx.curve)
        server.state["curve"] = True


def _get_curve(count: int) -> Callable[[Context, Server], Metrics]:
    def run_gets(ctx: Context, server: Server) -> Metrics:
        assert ctx.curve is not None
        blob = ctx.curve
        seconds = _concurrently(count, lambda i: download(server, "bench/curve", blob))
        total = count * blob.size
        return {"MBps": total / seconds / MB, "seconds": seconds, "_bytes": total}

    return run_gets


# -- skopeo --------------------------------------------------------------------------------------

_SKOPEO = ["skopeo", "copy", "--insecure-policy", "--retry-times", "0"]


def _creds(server: Server, direction: str) -> list[str]:
    """skopeo logs in with Basic credentials and keeps one token per scope (docker-style, whatever
    the server's --auth style: skopeo cannot be told to fetch one per request)."""
    return [f"--{direction}-creds", f"{server.user}:{server.password}"] if server.authenticated else []


def _push_argv(layout: Path, ref: str, server: Server, repository: str) -> list[str]:
    return [*_SKOPEO, "--preserve-digests", "--dest-tls-verify=false", *_creds(server, "dest"),
            f"oci:{layout}:{ref}", f"docker://{server.host}/{repository}:v1"]  # fmt: skip


def run_skopeo_push(ctx: Context, server: Server) -> Metrics:
    assert ctx.model_layout is not None and ctx.model is not None
    start = time.perf_counter()
    run(_push_argv(ctx.model_layout, "model", server, "bench/model"))
    seconds = time.perf_counter() - start
    server.state["model"] = True
    return {"MBps": ctx.model.total_bytes / seconds / MB, "seconds": seconds, "_bytes": ctx.model.total_bytes}


def _setup_pull(ctx: Context, server: Server) -> None:
    if "model" not in server.state:
        log(f"{server.label}: setup push of the model image for the pull workload")
        run_skopeo_push(ctx, server)


def run_skopeo_pull(ctx: Context, server: Server) -> Metrics:
    assert ctx.model is not None
    target = ctx.work / f"pull-{server.label}"
    shutil.rmtree(target, ignore_errors=True)
    try:
        start = time.perf_counter()
        run([*_SKOPEO, "--src-tls-verify=false", *_creds(server, "src"), f"docker://{server.host}/bench/model:v1",
             f"dir:{target}"])  # fmt: skip
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return {"MBps": ctx.model.total_bytes / seconds / MB, "seconds": seconds, "_bytes": ctx.model.total_bytes}


def run_parallel_push(ctx: Context, server: Server) -> Metrics:
    assert ctx.parallel_layout is not None
    total = sum(image.total_bytes for image in ctx.parallel)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            _push_argv(ctx.parallel_layout, image.ref, server, f"bench/par-{image.ref}"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for image in ctx.parallel
    ]
    failures = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            failures.append(err.decode(errors="replace")[-500:])
    seconds = time.perf_counter() - start
    if failures:
        raise CommandError(f"{server.label}: {len(failures)} parallel push(es) failed: {failures[0]}")
    return {"MBps": total / seconds / MB, "seconds": seconds, "_bytes": total}


WORKLOADS: tuple[Workload, ...] = (
    Workload("upload-mono", False, "monolithic blob upload: POST + PUT ?digest= streaming the blob (curl -T)",
             (MBPS, CPU_GB, RSS), run_upload_mono, _tokens_for("bench/blob")),
    Workload("upload-chunked", False, "chunked upload: POST, one PATCH per --chunk (curl -T), PUT ?digest=",
             (MBPS, CPU_GB, RSS), run_upload_chunked, _tokens_for("bench/chunked")),
    Workload("blob-get", False, "GET of the whole blob into /dev/null (curl)",
             (MBPS, CPU_GB, RSS), run_blob_get, _ensure_blob),
    Workload("range-get", False, "Range GET of the blob's second half (curl -r)",
             (MBPS, CPU_GB, RSS), run_range_get, _ensure_blob),
    Workload("manifest-get", True, "manifest GET by tag under wrk (Accept: OCI manifest)",
             (REQS, P99, CPU_REQ, RSS, RSS_MAX), run_manifest_get, _setup_small),
    Workload("tags-list", True, "GET /v2/<name>/tags/list under wrk (--tags tags)",
             (REQS, P99, CPU_REQ, RSS, RSS_MAX), run_tags_list, _setup_small),
    Workload("skopeo-push", False, "skopeo copy oci: -> docker:// of the model image (weights + small layers)",
             (MBPS, CPU_GB, RSS), run_skopeo_push),
    Workload("skopeo-pull", False, "skopeo copy docker:// -> dir: of the model image",
             (MBPS, CPU_GB, RSS), run_skopeo_pull, _setup_pull),
    Workload("parallel-push", True, "--parallel concurrent skopeo pushes of distinct --parallel-size images",
             (MBPS, CPU_GB, RSS), run_parallel_push),
    Workload("big-transfer", False, "upload then GET of a --big-size blob: peak RSS on big transfers",
             (RSS, Metric("upload_MBps", "upload MB/s", True), Metric("download_MBps", "download MB/s", True),
              CPU_GB), run_big_transfer, _tokens_for("bench/big")),
)  # fmt: skip

# Only with --auth: the token endpoint itself (Distribution has none: modelyard only).
TOKEN_WORKLOADS: tuple[Workload, ...] = (
    Workload("token", True, "GET /auth/token with the same Basic credentials, under wrk (--auth only)",
             (REQS, P99, CPU_REQ, RSS_MAX, Metric("non_2xx", "refused (non-2xx)", False)), run_token, _setup_small,
             ("modelyard",)),
)  # fmt: skip

# Only with --scale (or named with --only): how throughput grows with concurrent clients.
CURVE_WORKLOADS: tuple[Workload, ...] = (
    *(Workload(f"upload-x{n}", True, f"{n} monolithic uploads at once (curl -T) of a --curve-size blob",
               (MBPS, CPU_GB, RSS, RSS_MAX), _upload_curve(n), _tokens_for(*(f"bench/cu-{i}" for i in range(n))))
      for n in (1, 4, 16)),
    *(Workload(f"blob-get-x{n}", True, f"{n} GETs at once (curl) of a --curve-size blob",
               (MBPS, CPU_GB, RSS, RSS_MAX), _get_curve(n), _setup_curve_blob) for n in (1, 8, 32)),
)  # fmt: skip

ALL_WORKLOADS = WORKLOADS + TOKEN_WORKLOADS + CURVE_WORKLOADS
