#!/usr/bin/env python3
"""Benchmark modelyard against CNCF Distribution on loopback (issue #5). See bench/README.md.

.venv/bin/python bench/run.py                      # the full default suite (~6-8 min here)
.venv/bin/python bench/run.py --smoke              # tiny sizes: checks the suite works (CI)
.venv/bin/python bench/run.py --only upload-mono,blob-get --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inputs
import limits as physical
import modelclients
import scale
from common import CommandError, format_size, log, median, parse_size, run
from registries import Server
from report import REGISTRIES, format_report, summarize, targets
from workloads import ALL_WORKLOADS, CURVE_WORKLOADS, TOKEN_WORKLOADS, WORKLOADS, Context, Workload, measure

REPO = Path(__file__).resolve().parent.parent
NAMES = [w.name for w in ALL_WORKLOADS]

DEFAULTS = {  # full run / --smoke
    "blob_size": ("2GiB", "4MiB"),
    "chunk": ("64MiB", "1MiB"),
    "repeats": (2, 1),
    "model_size": (None, None),  # None: the blob size
    "parallel": (8, 8),
    "parallel_size": ("256MiB", "512KiB"),
    "big_size": ("4GiB", "8MiB"),
    "wrk_seconds": (5.0, 1.0),
    "disk_size": ("1GiB", "8MiB"),
    "openssl_seconds": (2, 1),
    "hashlib_seconds": (2.0, 0.25),
    "model_weights": ("2GiB", "2MiB"),
    "model_shard": ("512MiB", "512KiB"),
    "curve_size": ("256MiB", "1MiB"),
    "scale_repos": (10_000, 200),
    "scale_tags": (200_000, 4_000),
}


def _add_auth_and_scale(parser: argparse.ArgumentParser) -> None:
    """Issue 17's options: auth on for modelyard, and the scale suite."""
    parser.add_argument(
        "--auth",
        nargs="?",
        const="docker",
        choices=("docker", "crane"),
        help="modelyard with auth on (Distribution stays without): 'docker' (the default) reuses one token per "
        "scope, 'crane' fetches a token before every request; adds the token-endpoint workload",
    )
    parser.add_argument(
        "--scale",
        nargs="?",
        const="with",
        choices=("with", "only"),
        help="the scale suite (bench/scale.py: a seeded registry vs an empty one) and the concurrency curves "
        "(upload-x1/x4/x16, blob-get-x1/x8/x32); 'only' skips the rest",
    )
    parser.add_argument("--curve-size", help="blob of each concurrency-curve client [256MiB; smoke 1MiB]")
    parser.add_argument("--scale-repos", type=int, help="repositories seeded for --scale [10000; smoke 200]")
    parser.add_argument("--scale-tags", type=int, help="tags seeded for --scale [200000; smoke 4000]")


def _selection(args: argparse.Namespace) -> list[str]:
    """--only's workloads, else the default suite plus what --auth and --scale add."""
    if args.only:
        return [n.strip() for n in args.only.split(",") if n.strip()]
    default = [] if args.scale == "only" else list(WORKLOADS)
    if args.auth and args.scale != "only":
        default += TOKEN_WORKLOADS
    if args.scale:
        default += CURVE_WORKLOADS
    return [w.name for w in default]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repeat, wrk for 1 s (CI)")
    parser.add_argument("--blob-size", help="blob for uploads and GETs [2GiB; smoke 4MiB]")
    parser.add_argument("--chunk", help="PATCH size of the chunked upload [64MiB; smoke 1MiB]")
    parser.add_argument("--repeats", type=int, help="A B pairs per workload [2; smoke 1]")
    parser.add_argument("--only", help=f"comma-separated workloads out of: {','.join(NAMES)}")
    parser.add_argument("--json", type=Path, help="where to write the results [bench/results/<time>.json]")
    parser.add_argument("--model-size", help="weights layer of the skopeo model image [the blob size]")
    parser.add_argument("--parallel", type=int, help="concurrent pushes of distinct images [8]")
    parser.add_argument("--parallel-size", help="layer size of each parallel image [256MiB; smoke 512KiB]")
    parser.add_argument("--big-size", help="blob of the big-transfer (peak RSS) workload [4GiB; smoke 8MiB]")
    parser.add_argument("--wrk-seconds", type=float, help="wrk duration per run [5; smoke 1]")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument("--tags", type=int, default=10, help="tags in the repository of the wrk workloads [10]")
    parser.add_argument("--workers", type=int, default=2, help="modelyard --workers for concurrent workloads [2]")
    parser.add_argument("--blob-workers", type=int, default=1, help="modelyard --workers for single streams [1]")
    parser.add_argument("--disk-size", help="size of the dd+fsync limit measurement [1GiB; smoke 8MiB]")
    parser.add_argument("--openssl-seconds", type=int)
    parser.add_argument("--hashlib-seconds", type=float)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--rev", help="benchmark modelyard's src/ as committed at this git revision (git archive)")
    source.add_argument("--src", type=Path, help="benchmark the modelyard package under this directory")
    parser.add_argument("--no-limits", action="store_true", help="skip the physical-limit measurements")
    parser.add_argument("--model-weights", help="weights file of the mono model directory [2GiB; smoke 2MiB]")
    parser.add_argument("--model-shard", help="each of the 4 shards of the sharded model [512MiB; smoke 512KiB]")
    parser.add_argument("--model-jobs", type=int, help="modelyard push/pull --jobs [the client's default]")
    parser.add_argument(
        "--model-clients",
        choices=("with", "skip", "only"),
        default="with",
        help="the model-client suite (modelyard push/pull vs oras-py vs skopeo) [with]",
    )
    parser.add_argument("--work-dir", type=Path, help="inputs cache and server storage [$TMPDIR/modelyard-bench]")
    parser.add_argument("--no-bootstrap", action="store_true", help="don't run scripts/bootstrap --bench first")
    _add_auth_and_scale(parser)
    args = parser.parse_args(argv)
    if args.scale == "only" and "--model-clients" not in " ".join(argv):
        args.model_clients = "skip"
    index = 1 if args.smoke else 0
    for key, values in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, values[index])
    for key in ("blob_size", "chunk", "parallel_size", "big_size", "disk_size", "model_weights", "model_shard",
                "curve_size"):  # fmt: skip
        setattr(args, key, parse_size(getattr(args, key)))
    args.model_size = parse_size(args.model_size) if args.model_size else args.blob_size
    selected = _selection(args)
    unknown = [n for n in selected if n not in NAMES]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {NAMES}")
    if "token" in selected and not args.auth:
        parser.error("the token workload needs --auth")
    args.selected = [w for w in ALL_WORKLOADS if w.name in selected]
    if args.repeats < 1 or args.chunk < 1 or args.blob_size < 2:
        parser.error("--repeats, --chunk and --blob-size must be positive")
    if args.work_dir is None:
        args.work_dir = Path(tempfile.gettempdir()) / "modelyard-bench"
    return args


def bootstrap() -> None:
    """Install what the suite drives (docker-registry, wrk, skopeo, curl) when missing."""
    done = subprocess.run([str(REPO / "scripts" / "bootstrap"), "--bench"], check=False)
    if done.returncode != 0:
        raise SystemExit("bench: scripts/bootstrap --bench failed")


def check_tools() -> dict[str, str]:
    versions: dict[str, str] = {}
    commands = {
        "docker-registry": ["docker-registry", "--version"],
        "wrk": ["wrk", "-v"],
        "skopeo": ["skopeo", "--version"],
        "curl": ["curl", "--version"],
        "openssl": ["openssl", "version"],
    }
    for tool, argv in commands.items():
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is not installed (scripts/bootstrap --bench installs it)")
        done = run(argv, check=False)
        versions[tool] = (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"
    return versions


def prepare(args: argparse.Namespace) -> Context:
    work: Path = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    names = {w.name for w in args.selected}
    blob = inputs.random_blob(work, args.blob_size)
    chunks = inputs.chunk_files(work, blob, args.chunk) if "upload-chunked" in names else []
    big = inputs.sized_file(work, blob, args.big_size) if "big-transfer" in names else None
    model_layout = model = None
    if names & {"skopeo-push", "skopeo-pull"}:
        source = inputs.sized_file(work, blob, max(args.model_size, blob.size))
        model_layout, model = inputs.model_layout(work, source, args.model_size)
    parallel_layout: Path | None = None
    parallel: list[inputs.ImageInfo] = []
    if "parallel-push" in names:
        source = inputs.sized_file(work, blob, max(args.parallel * args.parallel_size, blob.size))
        parallel_layout, parallel = inputs.parallel_layout(work, source, args.parallel, args.parallel_size)
    return Context(
        work=work, blob=blob, chunks=chunks, chunk_size=args.chunk, big=big,
        model_layout=model_layout, model=model, parallel_layout=parallel_layout, parallel=parallel,
        wrk_seconds=args.wrk_seconds, wrk_threads=args.wrk_threads, wrk_connections=args.wrk_connections,
        tags=args.tags,
        curve=inputs.random_blob(work, args.curve_size) if names & {w.name for w in CURVE_WORKLOADS} else None,
    )  # fmt: skip


def measure_limits(args: argparse.Namespace, ctx: Context) -> dict[str, float]:
    log("measuring physical limits")
    return {
        "sha256_openssl": physical.sha256_openssl(args.openssl_seconds),
        "sha256_hashlib": physical.sha256_hashlib(args.hashlib_seconds),
        "disk_write_fsync": physical.disk_write_fsync(ctx.work, args.disk_size),
        "loopback_sendfile": physical.loopback_sendfile(ctx.blob.path),
    }


def git_state() -> dict[str, str]:
    head = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    dirty = run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], check=False).stdout.strip()
    return {"commit": head, "src_dirty": "yes" if dirty else "no"}


def modelyard_source(args: argparse.Namespace) -> tuple[Path | None, str]:
    """Where the modelyard under test comes from, and how to say so in the results."""
    if args.src is not None:
        src = args.src.resolve()
        if not (src / "modelyard" / "__init__.py").exists():
            raise SystemExit(f"bench: {src} has no modelyard package")
        return src, f"--src {src}"
    if args.rev is None:
        state = git_state()
        return None, f"working tree at {state['commit']} (src dirty: {state['src_dirty']})"
    commit = run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{args.rev}^{{commit}}"]).stdout.strip()
    target = args.work_dir / f"src-{commit[:12]}"
    if not (target / "src" / "modelyard" / "__init__.py").exists():
        log(f"snapshot of src/ at {commit[:12]} -> {target}")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "src"], capture_output=True, check=True, timeout=120
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=120)
    return target / "src", f"git {commit[:12]} ({args.rev})"


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    loadavg_start = os.getloadavg()
    versions = check_tools()
    ctx = prepare(args)
    src, src_label = modelyard_source(args)
    log(f"modelyard under test: {src_label}")
    servers_root = ctx.work / f"servers-{os.getpid()}"
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    limit_samples: dict[str, list[float]] = {}
    server_totals: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        log(f"=== run {repeat + 1} of {args.repeats} ===")
        if not args.no_limits:
            for key, value in measure_limits(args, ctx).items():
                limit_samples.setdefault(key, []).append(value)
        servers: dict[str, Server] = {"distribution": Server("distribution", "distribution", servers_root / "dist")}
        for count in sorted({args.blob_workers if not w.concurrent else args.workers for w in args.selected}):
            servers[f"modelyard-w{count}"] = Server(
                "modelyard", f"modelyard[w{count}]", servers_root / f"my-w{count}", workers=count, src=src,
                auth=args.auth,
            )  # fmt: skip
        try:
            for server in servers.values():
                server.start()
            cpu_start = {label: s.cpu_seconds() for label, s in servers.items()}
            peaks: dict[str, float] = dict.fromkeys(servers, 0.0)
            for workload in args.selected:
                workers = args.workers if workload.concurrent else args.blob_workers
                pair = {"distribution": servers["distribution"], "modelyard": servers[f"modelyard-w{workers}"]}
                for registry in [r for r in REGISTRIES if r in workload.registries]:  # A then B, every time
                    server = pair[registry]
                    workload.setup(ctx, server)
                    log(f"{workload.name}: {server.label}")
                    metrics = measure(server, lambda w=workload, s=server: w.run(ctx, s))  # type: ignore[misc]
                    metrics["repeat"] = repeat
                    samples.setdefault(workload.name, {}).setdefault(registry, []).append(metrics)
                    label = "distribution" if registry == "distribution" else f"modelyard-w{workers}"
                    peaks[label] = max(peaks[label], metrics["peak_rss_mib"])
                    log(f"  {_brief(workload, metrics)}")
            for label, server in servers.items():
                server_totals.append({
                    "server": server.label, "repeat": repeat, "workers": server.workers,
                    "cpu_s_total": server.cpu_seconds() - cpu_start[label], "peak_rss_mib_max": peaks[label],
                })  # fmt: skip
        except BaseException:
            for server in servers.values():
                server.stop()
            log(f"server logs kept in {servers_root}")
            raise
        for server in servers.values():
            server.stop()
        shutil.rmtree(servers_root, ignore_errors=True)
    limits = {key: median(values) for key, values in limit_samples.items()}
    summary = summarize(args.selected, samples)
    goals = targets(summary, limits, args.auth)
    meta = {
        "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "smoke": args.smoke,
        "repeats": args.repeats,
        "workers": args.workers,
        "blob_workers": args.blob_workers,
        "distribution_version": versions["docker-registry"].split()[-1],
        "tools": versions,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg()},
        "git": git_state(),
        "modelyard_source": src_label,
        "auth": args.auth,
        "modelyard_env": {k: v for k, v in os.environ.items() if k.startswith("MODELYARD_")},
        "sizes": {
            "blob": format_size(args.blob_size), "chunk": format_size(args.chunk),
            "model": format_size(args.model_size), "big": format_size(args.big_size),
            "parallel": f"{args.parallel}x{format_size(args.parallel_size)}", "disk": format_size(args.disk_size),
        },
        "wrk": {"threads": args.wrk_threads, "connections": args.wrk_connections, "seconds": args.wrk_seconds,
                "tags": args.tags},
    }  # fmt: skip
    return {
        "meta": meta,
        "limits": {"median_MBps": limits, "samples": limit_samples},
        "workloads": {
            name: {
                "description": next(w.description for w in args.selected if w.name == name),
                **entry,
                "samples": samples[name],
            }
            for name, entry in summary.items()
        },
        "targets": goals,
        "servers": server_totals,
        "report": format_report(args.selected, summary, limits, goals, meta),
    }


def run_model_clients(args: argparse.Namespace) -> dict[str, Any]:
    """modelyard push/pull vs oras-py vs skopeo on one modelyard server (bench/modelclients.py)."""
    src, src_label = modelyard_source(args)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    sizes = modelclients.Sizes(weights=args.model_weights, shard=args.model_shard, jobs=args.model_jobs)
    result = modelclients.run_suite(args.work_dir, sizes, args.repeats, src, args.blob_workers)
    result["meta"].update({
        "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
        "modelyard_source": src_label,
        "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg()},
    })  # fmt: skip
    return result


def _brief(workload: Workload, metrics: dict[str, float]) -> str:
    return ", ".join(f"{m.label} {metrics[m.key]:.2f}" for m in workload.metrics if m.key in metrics)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.no_bootstrap:
        bootstrap()
    try:
        result: dict[str, Any] = {"report": "", "meta": {}}
        if args.model_clients != "only" and args.selected:
            result = run_suite(args)
        if args.model_clients != "skip":
            result["model_clients"] = run_model_clients(args)
        if args.scale:
            src, _ = modelyard_source(args)
            root = args.work_dir / f"scale-{os.getpid()}"
            try:
                result["scale"] = scale.run_scale(args, prepare(args), src, root)
            finally:
                shutil.rmtree(root, ignore_errors=True)
    except CommandError as exc:
        log(f"FAILED: {exc}")
        return 1
    print(result["report"], flush=True)
    if args.scale:
        print(result["scale"]["report"], flush=True)
    if args.model_clients != "skip":
        print(result["model_clients"]["report"], flush=True)
    out = args.json or REPO / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
