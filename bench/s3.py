#!/usr/bin/env python3
"""modelyard on S3 vs CNCF Distribution 2.8.2 with its S3 driver, both on one moto S3 server.

.venv/bin/python bench/s3.py                                  # 256 MiB blob, 32 MiB chunks, 3 repeats
.venv/bin/python bench/s3.py --blob-size 64MiB --repeats 1    # quick look

Both registries store in the same moto server (``python -m moto.server``, in memory), each in its
own bucket, with fresh prefixes every repeat; runs alternate Distribution, modelyard. Workloads:

- ``upload-mono``: POST then ``PUT ?digest=`` streaming the blob (``curl -T``);
- ``upload-chunked``: POST, one PATCH per chunk, PUT (another blob of the same size: no dedup);
- ``get-redirect``: ``curl -L`` of the blob: a 307 to a presigned URL (both registries'
  default on S3), then the bytes from moto; ``get-direct`` is the same object fetched from moto
  by a presigned URL without the registry, the yardstick of the redirect target;
- ``get-proxied``: a second process of each registry with redirects off on the same storage;
- ``skopeo-push`` / ``skopeo-pull``: ``skopeo copy`` of the model image (a weights layer of
  ``--model-size`` plus small layers, as ``bench/run.py``'s) into each registry and back out to
  ``dir:`` (the pull follows the registries' redirects to moto);
- ``manifest-get``: ``wrk`` on one modelyard replica, then two wrk halves on two replicas of the
  same storage at once (sum of req/s): how replicas scale on this machine, with the cores the
  servers and the wrk processes used meanwhile (on two cores, what the load generator takes
  the second replica cannot have).

Prints a table and writes JSON (``--json``). The machine is shared: medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3
from botocore.config import Config
from common import MB, CommandError, free_port, parse_size, run
from inputs import BlobFile, ImageInfo, chunk_files, model_layout, random_blob, sized_file
from registries import Server
from workloads import Context, parse_wrk, run_skopeo_pull, run_skopeo_push, upload_chunked, upload_monolithic

KEY, SECRET, REGION = "bench", "bench-secret", "us-east-1"
DISTRIBUTION_S3 = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  s3:
    accesskey: {key}
    secretkey: {secret}
    region: {region}
    regionendpoint: {endpoint}
    bucket: distribution-bench
    secure: false
    v4auth: true
    rootdirectory: /{prefix}
  redirect:
    disable: {disable}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{{port}}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if (
            run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url + "/moto-api/"], check=False).stdout
            == "200"
        ):
            return process, url
        time.sleep(0.1)
    raise CommandError("moto server did not start")


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )  # fmt: skip


def modelyard_env(endpoint: str, prefix: str, redirect: bool) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "MODELYARD_STORAGE_BACKEND": "s3",
        "MODELYARD_S3_BUCKET": "modelyard-bench", "MODELYARD_S3_PREFIX": prefix,
        "MODELYARD_S3_ENDPOINT_URL": endpoint, "MODELYARD_S3_REGION": REGION,
        "MODELYARD_S3_ADDRESSING_STYLE": "path", "MODELYARD_BLOB_REDIRECT": str(redirect).lower(),
        "MODELYARD_FSYNC": "false",
    }  # fmt: skip


def get(url: str, size: int) -> float:
    start = time.perf_counter()
    out = run(["curl", "-sS", "-L", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url])
    seconds = time.perf_counter() - start
    if out.stdout.split() != ["200", str(size)]:
        raise CommandError(f"GET {url[:100]} gave {out.stdout}")
    return seconds


def wrk(urls: list[str], seconds: int, connections: int, servers: list[Server]) -> dict[str, float]:
    """One wrk per URL, run at once (connections split between them): total req/s, and where
    the machine's CPU went meanwhile -- the servers' and the load generators' CPU-seconds per
    second (2.0 is both cores of this machine), so a scaling figure says what bounded it."""
    argv = ["wrk", "-t1", f"-c{connections // len(urls)}", f"-d{seconds}s", "--latency",
            "-H", "Accept: application/vnd.oci.image.manifest.v1+json"]  # fmt: skip
    server_cpu = sum(server.cpu_seconds() for server in servers)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes = [subprocess.Popen([*argv, url], stdout=subprocess.PIPE, text=True) for url in urls]
    total = 0.0
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        metrics = parse_wrk(out)
        if metrics["non_2xx"]:
            raise CommandError(f"wrk saw {metrics['non_2xx']} errors")
        total += metrics["req_s"]
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    server_cpu = sum(server.cpu_seconds() for server in servers) - server_cpu
    return {"req/s": total, "server cores": server_cpu / elapsed, "wrk cores": wrk_cpu / elapsed}


def push_manifest(base: str) -> str:
    """A tiny image in bench/small:t0; returns the manifest path."""
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"tiny layer"
    for data in (config, layer):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/octet-stream",
             "--data-binary", data.decode(), f"{base}/v2/bench/small/blobs/uploads/?digest={digest}"])  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}],
    })  # fmt: skip
    out = run(["curl", "-sS", "-X", "PUT", "-o", "/dev/null", "-w", "%{http_code}", "-H",
               "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", manifest,
               f"{base}/v2/bench/small/manifests/t0"])  # fmt: skip
    if out.stdout != "201":
        raise CommandError(f"manifest PUT answered {out.stdout}")
    return "/v2/bench/small/manifests/t0"


def one_repeat(
    number: int,
    work: Path,
    endpoint: str,
    blobs: list[BlobFile],
    chunks: list[Path],
    wrk_s: int,
    model: tuple[Path, ImageInfo],
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    prefix = f"r{number}-{int(time.time())}"
    dist_conf = {"key": KEY, "secret": SECRET, "region": REGION, "endpoint": endpoint, "prefix": prefix}
    # aws-sdk-go 1 refuses to start on a plain-HTTP endpoint with AWS_CA_BUNDLE set ("unable to
    # load custom CA bundle, HTTPClient's transport unsupported type"): drop it for Distribution.
    no_bundle = {"AWS_CA_BUNDLE": ""}
    dist = Server(
        "distribution",
        "distribution-s3",
        work / "dist",
        env=no_bundle,
        config=DISTRIBUTION_S3.format(disable="false", **dist_conf),
    )
    dist_proxy = Server(
        "distribution",
        "distribution-s3-proxied",
        work / "dist-proxy",
        env=no_bundle,
        config=DISTRIBUTION_S3.format(disable="true", **dist_conf),
    )
    mine = Server("modelyard", "modelyard-s3", work / "my", env=modelyard_env(endpoint, f"{prefix}/", True))
    mine_proxy = Server(
        "modelyard",
        "modelyard-s3-proxied",
        work / "my",
        keep_root=True,
        env=modelyard_env(endpoint, f"{prefix}/", False),
    )
    servers = [dist, dist_proxy, mine, mine_proxy]
    try:
        for server in servers:
            server.start()
        mono, chunked = blobs
        for name, pair in (("distribution", (dist, dist_proxy)), ("modelyard", (mine, mine_proxy))):
            direct_server, proxied = pair
            row: dict[str, float] = {}
            row["upload-mono MB/s"] = mono.size / upload_monolithic(direct_server, "bench/blob", mono) / MB
            row["upload-chunked MB/s"] = (
                chunked.size / upload_chunked(direct_server, "bench/blob", chunked, chunks) / MB
            )
            url = f"{direct_server.base_url}/v2/bench/blob/blobs/{mono.digest}"
            row["get-redirect MB/s"] = mono.size / get(url, mono.size) / MB
            url = f"{proxied.base_url}/v2/bench/blob/blobs/{mono.digest}"
            row["get-proxied MB/s"] = mono.size / get(url, mono.size) / MB
            layout, image = model
            ctx = Context(work, mono, [], 0, None, layout, image, None)
            row["skopeo-push MB/s"] = run_skopeo_push(ctx, direct_server)["MBps"]
            row["skopeo-pull MB/s"] = run_skopeo_pull(ctx, direct_server)["MBps"]
            results[name] = row
        client = s3_client(endpoint)
        key = f"{prefix}/blobs/sha256/{mono.digest[7:9]}/{mono.digest[7:]}"
        presigned = client.generate_presigned_url("get_object", Params={"Bucket": "modelyard-bench", "Key": key})
        results["moto"] = {"get-direct MB/s": mono.size / get(presigned, mono.size) / MB}
        path = push_manifest(mine.base_url)
        one = wrk([mine.base_url + path], wrk_s, 32, [mine])
        two = wrk([mine.base_url + path, mine_proxy.base_url + path], wrk_s, 32, [mine, mine_proxy])
        for label, measured in (("1 replica", one), ("2 replicas", two)):
            results["modelyard"].update({f"manifest-get {label} {key}": value for key, value in measured.items()})
    finally:
        for server in servers:
            server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blob-size", default="256MiB")
    parser.add_argument("--chunk", default="32MiB")
    parser.add_argument("--model-size", default=None, help="weights layer of the skopeo image [the blob size]")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.gettempdir()) / "modelyard-bench-s3"
    work.mkdir(exist_ok=True)
    size = parse_size(args.blob_size)
    for sub in ("a", "b"):
        (work / sub).mkdir(exist_ok=True)
    blobs = [random_blob(work / "a", size), random_blob(work / "b", size)]
    chunks = chunk_files(work / "b", blobs[1], parse_size(args.chunk))
    weights = parse_size(args.model_size) if args.model_size else size
    model = model_layout(work / "a", sized_file(work / "a", blobs[0], max(weights, size)), weights)
    moto, endpoint = start_moto()
    try:
        client = s3_client(endpoint)
        for bucket in ("modelyard-bench", "distribution-bench"):
            client.create_bucket(Bucket=bucket)
        samples = [one_repeat(n, work, endpoint, blobs, chunks, args.wrk_seconds, model) for n in range(args.repeats)]
    finally:
        moto.terminate()
    table: dict[str, dict[str, float]] = {}
    for sample in samples:
        for registry, row in sample.items():
            for metric, value in row.items():
                table.setdefault(metric, {}).setdefault(registry, []).append(value)  # type: ignore[arg-type]
    print(f"\nS3 (moto) benchmark: blob {args.blob_size}, chunks {args.chunk}, {args.repeats} repeat(s), medians")
    print(f"{'metric':34} {'Distribution':>13} {'modelyard':>10} {'ratio':>6}")
    for metric, by in table.items():
        d = statistics.median(by["distribution"]) if "distribution" in by else None  # type: ignore[arg-type]
        m = statistics.median(by.get("modelyard") or by.get("moto"))  # type: ignore[arg-type]
        ratio = f"{m / d:6.2f}" if d else ""
        shown = f"{d:>13.1f}" if d is not None else " " * 13
        print(f"{metric:34} {shown} {m:>10.1f} {ratio}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "samples": samples}, indent=2))


if __name__ == "__main__":
    main()
