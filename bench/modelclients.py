"""Model directories in and out (issue 10): ``modelyard push``/``pull`` against oras-py and skopeo,
all three talking to the same fresh modelyard server. See bench/README.md ("Model clients").

Inputs (cached in the work dir, keyed by size): a ``mono`` model directory (one weights file plus
``config.json``, ``tokenizer.json``, ``README.md``, ``LICENSE``), a ``sharded`` one (four weight
shards plus the same four small files), a ``sharded-v2`` (hard links to ``sharded`` but one
shard rewritten with new bytes), and for skopeo an OCI layout of each: the same ModelPack-style
artifact (raw layers, one per file, ``org.opencontainers.image.title`` names) whose blobs are
hard links to the files, so nothing is copied.

Each client runs as its own process, timed from start to exit, with its peak RSS and CPU read
from ``os.wait4``'s rusage (that process only: skopeo and both Python clients are one process
each). Each push goes to a repository of its own (``bench/<variant>-<client>``) so no client
finds another's blobs linked; pulls read what ``modelyard push`` pushed, into an empty
directory, deleted afterwards. The re-push workload pushes ``sharded-v2`` over each client's
own ``sharded`` push: its time, and for ``modelyard push`` the bytes it says it sent (the
target: at most the changed shard + 1 MiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import MB, CommandError, format_size, log, median
from registries import Server

MiB = 1024 * 1024
CLIENTS = ("oras", "skopeo", "modelyard")  # A B C, in this order every time
SMALL = {"config.json": 4096, "tokenizer.json": 2 * MiB, "README.md": 2048, "LICENSE": 11 * 1024}
WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
CONFIG_TYPE = "application/vnd.cncf.model.config.v1+json"
ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
TITLE = "org.opencontainers.image.title"

# oras-py as a client process of its own: push the files of the current directory, or pull.
_ORAS = """
import sys, oras.client
mode, host, target = sys.argv[1:4]
client = oras.client.OrasClient(hostname=host, insecure=True)
if mode == "push":
    client.push(target=f"{host}/{target}", files=sys.argv[4:], disable_path_validation=True)
else:
    client.pull(target=f"{host}/{target}", outdir=sys.argv[4])
"""


@dataclass
class ModelDir:
    path: Path
    files: dict[str, tuple[str, int]]  # name -> (sha256 digest, size)
    layout: Path | None = None

    @property
    def total(self) -> int:
        return sum(size for _, size in self.files.values())


@dataclass
class Run:
    """What one client process did."""

    seconds: float
    peak_rss_mib: float
    cpu_s: float
    stdout: str = ""


@dataclass
class Sizes:
    weights: int
    shard: int
    shards: int = 4
    jobs: int | None = None
    samples: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)


def _write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(left, 4 * MiB))
            digest.update(piece)
            out.write(piece)
            left -= len(piece)
    return f"sha256:{digest.hexdigest()}"


def _digest_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while piece := stream.read(4 * MiB):
            digest.update(piece)
    return f"sha256:{digest.hexdigest()}"


def _model_dir(work: Path, name: str, weights: dict[str, int], *, like: ModelDir | None = None) -> ModelDir:
    """A cached model directory; ``like``: hard-link every file of that one not in ``weights``."""
    root = work / f"model-{name}"
    index = root.with_suffix(".json")
    if index.exists() and root.is_dir():
        return ModelDir(root, {k: (d, s) for k, (d, s) in json.loads(index.read_text()).items()})
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    files: dict[str, tuple[str, int]] = {}
    for file, size in weights.items():
        files[file] = (_write_random(root / file, size), size)
    sources = like.files if like else dict.fromkeys(SMALL, ("", 0))
    for file in sources:
        if file in files:
            continue
        if like is not None:
            os.link(like.path / file, root / file)
            files[file] = like.files[file]
        else:
            size = SMALL[file]
            files[file] = (_write_random(root / file, size), size)
    if "config.json" in files and like is None:  # a readable config.json, padded to its size
        text = json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16"})
        (root / "config.json").write_text(text.ljust(SMALL["config.json"]))
        files["config.json"] = (_digest_of(root / "config.json"), SMALL["config.json"])
    index.write_text(json.dumps(files))
    return ModelDir(root, files)


def _layout(model: ModelDir) -> Path:
    """An OCI image layout of the model as a ModelPack-style artifact, blobs hard-linked."""
    layout = model.path.with_name(model.path.name + "-layout")
    if (layout / "index.json").exists():
        return layout
    shutil.rmtree(layout, ignore_errors=True)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = []
    for name, (digest, size) in sorted(model.files.items()):
        target = blobs / digest.split(":", 1)[1]
        if not target.exists():
            os.link(model.path / name, target)
        layers.append({"mediaType": WEIGHT, "digest": digest, "size": size, "annotations": {TITLE: name}})

    def put(body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        (blobs / digest).write_bytes(body)
        return f"sha256:{digest}"

    config = json.dumps(
        {"descriptor": {"name": model.path.name}, "modelfs": {"type": "layers", "diffIds": []}}
    ).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": ARTIFACT,
        "config": {"mediaType": CONFIG_TYPE, "digest": put(config), "size": len(config)}, "layers": layers,
    }).encode()  # fmt: skip
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "model"},
    }]}  # fmt: skip
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def prepare(work: Path, sizes: Sizes) -> dict[str, ModelDir]:
    tag = f"{format_size(sizes.weights)}-{sizes.shards}x{format_size(sizes.shard)}".replace(" ", "")
    mono = _model_dir(work, f"mono-{tag}", {"model.safetensors": sizes.weights})
    shards = {f"model-{i + 1:05d}-of-{sizes.shards:05d}.safetensors": sizes.shard for i in range(sizes.shards)}
    sharded = _model_dir(work, f"sharded-{tag}", shards)
    changed = sorted(shards)[1]
    v2 = _model_dir(work, f"sharded-v2-{tag}", {changed: sizes.shard}, like=sharded)
    models = {"mono": mono, "sharded": sharded, "sharded-v2": v2}
    for model in models.values():
        model.layout = _layout(model)
    return models


def _measured(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run one client process to its end: wall time, and its own peak RSS and CPU from ``os.wait4``
    (that process's rusage, not its siblings')."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err, stdin=devnull)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise CommandError(f"{' '.join(map(str, argv[:5]))} exited {process.returncode}: {stderr[-2000:]}")
    # ru_maxrss is in KiB on Linux.
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, stdout)


class Clients:
    """The three clients' command lines for one server."""

    def __init__(self, server: Server, src: Path | None, jobs: int | None) -> None:
        self.server = server
        self.env = dict(os.environ)
        if src is not None:
            self.env["PYTHONPATH"] = str(src)  # the same modelyard as the server
        self.env.pop("MODELYARD_API_KEY", None)
        self.env["MODELYARD_CONFIG_DIR"] = str(server.root / "client-config")
        self.jobs = ["--jobs", str(jobs)] if jobs else []

    def push(self, client: str, model: ModelDir, repository: str, tag: str) -> Run:
        host = self.server.host
        if client == "modelyard":
            return _measured(
                [sys.executable, "-m", "modelyard", "push", str(model.path), f"{repository}:{tag}", "--json",
                 "--registry", self.server.base_url, *self.jobs],
                env=self.env,
            )  # fmt: skip
        if client == "oras":
            names = sorted(model.files)
            return _measured(
                [sys.executable, "-c", _ORAS, "push", host, f"{repository}:{tag}", *names], cwd=model.path, env=self.env
            )
        assert model.layout is not None
        return _measured(
            ["skopeo", "copy", "--insecure-policy", "--retry-times", "0", "--preserve-digests",
             "--dest-tls-verify=false", f"oci:{model.layout}:model", f"docker://{host}/{repository}:{tag}"],
        )  # fmt: skip

    def pull(self, client: str, repository: str, tag: str, target: Path) -> Run:
        host = self.server.host
        if client == "modelyard":
            return _measured(
                [sys.executable, "-m", "modelyard", "pull", f"{repository}:{tag}", str(target), "--quiet",
                 "--registry", self.server.base_url, *self.jobs],
                env=self.env,
            )  # fmt: skip
        if client == "oras":
            return _measured(
                [sys.executable, "-c", _ORAS, "pull", host, f"{repository}:{tag}", str(target)], env=self.env
            )
        return _measured(
            ["skopeo", "copy", "--insecure-policy", "--retry-times", "0", "--src-tls-verify=false",
             f"docker://{host}/{repository}:{tag}", f"dir:{target}"],
        )  # fmt: skip


def _metrics(run: Run, nbytes: int, server: Server, cpu_before: float) -> dict[str, float]:
    return {
        "MBps": nbytes / run.seconds / MB,
        "seconds": run.seconds,
        "client_peak_rss_mib": run.peak_rss_mib,
        "client_cpu_s": run.cpu_s,
        "server_cpu_s": server.cpu_seconds() - cpu_before,
    }


def _check_pulled(model: ModelDir, target: Path, client: str) -> None:
    """Every file arrived (by name, or for skopeo's dir: by digest), with its size."""
    if client == "skopeo":
        for digest, size in model.files.values():
            found = target / digest.split(":", 1)[1]
            if not found.exists() or found.stat().st_size != size:
                raise CommandError(f"skopeo pull is missing {digest}")
        return
    for name, (_, size) in model.files.items():
        found = target / name
        if not found.exists() or found.stat().st_size != size:
            raise CommandError(f"{client} pull is missing {name}")


WORKLOADS = ("push-mono", "pull-mono", "push-sharded", "pull-sharded", "repush-shard")


def run_repeat(work: Path, models: dict[str, ModelDir], clients: Clients, sizes: Sizes, repeat: int) -> None:
    server = clients.server

    def record(workload: str, client: str, metrics: dict[str, float]) -> None:
        metrics["repeat"] = repeat
        sizes.samples.setdefault(workload, {}).setdefault(client, []).append(metrics)
        log(f"  {workload} {client}: {metrics['MBps']:.1f} MB/s, {metrics['seconds']:.2f} s, "
            f"client RSS {metrics['client_peak_rss_mib']:.0f} MiB")  # fmt: skip

    for variant in ("mono", "sharded"):
        model = models[variant]
        for client in CLIENTS:
            os.sync()
            before = server.cpu_seconds()
            done = clients.push(client, model, f"bench/{variant}-{client}", "v1")
            metrics = _metrics(done, model.total, server, before)
            if client == "modelyard":
                metrics["sent_MiB"] = json.loads(done.stdout)["sent_bytes"] / MiB
            record(f"push-{variant}", client, metrics)
        for client in CLIENTS:
            target = work / f"pulled-{client}"
            shutil.rmtree(target, ignore_errors=True)
            os.sync()
            before = server.cpu_seconds()
            try:
                done = clients.pull(client, f"bench/{variant}-modelyard", "v1", target)
                _check_pulled(model, target, client)
            finally:
                shutil.rmtree(target, ignore_errors=True)
            record(f"pull-{variant}", client, _metrics(done, model.total, server, before))
    v2 = models["sharded-v2"]
    for client in CLIENTS:
        os.sync()
        before = server.cpu_seconds()
        done = clients.push(client, v2, f"bench/sharded-{client}", "v2")
        metrics = _metrics(done, v2.total, server, before)
        if client == "modelyard":
            metrics["sent_MiB"] = json.loads(done.stdout)["sent_bytes"] / MiB
            metrics["changed_MiB"] = sizes.shard / MiB
        record("repush-shard", client, metrics)


def summarize(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for workload, by_client in samples.items():
        entry: dict[str, Any] = {}
        for client, runs in by_client.items():
            keys = sorted({k for r in runs for k in r if k != "repeat"})
            entry[client] = {k: median([r[k] for r in runs if k in r]) for k in keys}
        for other in ("oras", "skopeo"):
            if "modelyard" in entry and other in entry:
                entry[f"ratio_vs_{other}"] = entry["modelyard"]["MBps"] / entry[other]["MBps"]
        summary[workload] = {**entry, "samples": by_client}
    return summary


def targets(summary: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []

    def ratio(goal: str, workload: str, other: str, wanted: float) -> None:
        value = summary.get(workload, {}).get(f"ratio_vs_{other}")
        goals.append({"target": goal, "wanted": wanted, "value": value, "met": value is not None and value >= wanted})

    for variant in ("mono", "sharded"):
        ratio(f"modelyard push >= 1.5x oras-py ({variant})", f"push-{variant}", "oras", 1.5)
        ratio(f"modelyard push >= 1.3x skopeo ({variant})", f"push-{variant}", "skopeo", 1.3)
        ratio(f"modelyard pull >= 1.5x oras-py ({variant})", f"pull-{variant}", "oras", 1.5)
    repush = summary.get("repush-shard", {}).get("modelyard", {})
    allowed = sizes.shard / MiB + 1
    sent = repush.get("sent_MiB")
    goals.append({"target": "re-push sends <= changed shard + 1 MiB", "wanted": allowed, "value": sent,
                  "met": sent is not None and sent <= allowed})  # fmt: skip
    rss = max(
        (summary[w]["modelyard"]["client_peak_rss_mib"] for w in summary if "modelyard" in summary[w]), default=None
    )
    goals.append({"target": "modelyard client peak RSS <= 150 MiB", "wanted": 150, "value": rss,
                  "met": rss is not None and rss <= 150})  # fmt: skip
    return goals


def format_report(summary: dict[str, Any], goals: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "",
        f"model clients (issue 10) — one modelyard server, {meta['repeats']} repeat(s), medians; "
        f"weights {meta['sizes']['weights']}, shards {meta['sizes']['sharded']}",
        f"{'workload':<14}{'metric':<24}{'oras-py':>12}{'skopeo':>12}{'modelyard':>12}{'my/oras':>10}{'my/skopeo':>11}",
    ]
    for workload in WORKLOADS:
        entry = summary.get(workload)
        if entry is None:
            continue
        for key, label in (("MBps", "MB/s ↑"), ("client_peak_rss_mib", "client peak RSS MiB ↓"),
                           ("client_cpu_s", "client CPU-s ↓"), ("server_cpu_s", "server CPU-s ↓"),
                           ("sent_MiB", "MiB sent ↓")):  # fmt: skip
            values = [entry.get(c, {}).get(key) for c in CLIENTS]
            if all(v is None for v in values):
                continue
            mine, oras, skopeo = values[2], values[0], values[1]
            cells = "".join(f"{v:>12.1f}" if v is not None else f"{'-':>12}" for v in values)
            r1 = f"{mine / oras:>10.2f}" if mine is not None and oras else f"{'-':>10}"
            r2 = f"{mine / skopeo:>11.2f}" if mine is not None and skopeo else f"{'-':>11}"
            lines.append(f"{workload if key == 'MBps' else '':<14}{label:<24}{cells}{r1}{r2}")
    lines.append("targets (issue 10, model clients)")
    for goal in goals:
        value = goal["value"]
        shown = "-" if value is None else f"{value:.2f}"
        lines.append(f"  {goal['target']:<48} {shown:>10}  {'MET' if goal['met'] else 'MISSED'}")
    return "\n".join(lines)


def run_suite(work: Path, sizes: Sizes, repeats: int, src: Path | None, workers: int) -> dict[str, Any]:
    started = time.time()
    log(f"model clients: preparing inputs (weights {format_size(sizes.weights)}, "
        f"{sizes.shards} x {format_size(sizes.shard)})")  # fmt: skip
    models = prepare(work, sizes)
    for repeat in range(repeats):
        log(f"=== model clients, run {repeat + 1} of {repeats} ===")
        server = Server(
            "modelyard", f"modelyard[w{workers}]", work / f"models-server-{os.getpid()}", workers=workers, src=src
        )
        server.start()
        try:
            server.refresh_pids()
            run_repeat(work, models, Clients(server, src, sizes.jobs), sizes, repeat)
        except BaseException:
            log(f"server log kept in {server.root}")
            server.stop()
            raise
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
    summary = summarize(sizes.samples)
    goals = targets(summary, sizes)
    meta = {
        "repeats": repeats,
        "workers": workers,
        "duration_s": round(time.time() - started, 1),
        "sizes": {"weights": format_size(sizes.weights), "sharded": f"{sizes.shards}x{format_size(sizes.shard)}",
                  "small_files": {k: format_size(v) for k, v in SMALL.items()}},
        "jobs": sizes.jobs,
    }  # fmt: skip
    return {"meta": meta, "workloads": summary, "targets": goals, "report": format_report(summary, goals, meta)}
