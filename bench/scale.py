"""The scale suite (issue 17): the same small reads in an empty modelyard and in one seeded with
``--scale-repos`` repositories holding ``--scale-tags`` tags (10,000 / 200,000 by default), with
CNCF Distribution 2.8.2 (empty) as the yardstick measured in the same run.

Three servers, each workload in turn on A = Distribution (empty), B = modelyard (empty),
C = modelyard (seeded), ``--repeats`` times; the table shows medians, C ÷ B (how cost grows
with the registry's size; the target is within 20 %) and B, C ÷ A.

Seeding goes through the metadata layer's own insert (``metadata.sql_base.insert_repository``,
one transaction) and bulk inserts of manifest and tag rows into the server's database while it
runs: 10,000 repositories and 200,000 tags take ~10-20 s here, against hours through the HTTP
API. Seeded repositories hold one small manifest each (its blobs are not stored: nothing reads
them) and ``scale_tags / scale_repos`` tags pointing at it; they have no tag history and no
model-index rows (the listing reads neither). Every server also holds ``bench/small`` with
``SCALE_BENCH_TAGS`` tags, pushed through the API: the repository the workloads read.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import OCI_MANIFEST, Http, log, median
from inputs import small_image
from registries import Server
from workloads import CPU_REQ, P99, REQS, RSS_MAX, Context, Metric, _wrk, measure

SCALE_BENCH_TAGS = 150  # > 100, so tags/list?n=100 is a full page with a next one
ROLES = ("distribution", "modelyard", "modelyard-seeded")
METRICS: tuple[Metric, ...] = (REQS, P99, CPU_REQ, RSS_MAX)
SCOPE = "repository:bench/small:pull"


def _workloads(middle: str) -> list[tuple[str, str, dict[str, str], str | None]]:
    """(name, path, headers, token scope) of each read."""
    return [
        ("scale-manifest-get", "/v2/bench/small/manifests/t0", {"Accept": OCI_MANIFEST}, SCOPE),
        ("scale-tags-list", "/v2/bench/small/tags/list?n=100", {}, SCOPE),
        ("scale-tags-list-last", "/v2/bench/small/tags/list?n=100&last=t50", {}, SCOPE),
        ("scale-catalog", "/v2/_catalog?n=100", {}, "registry:catalog:*"),
        ("scale-catalog-middle", f"/v2/_catalog?n=100&last={middle}", {}, "registry:catalog:*"),
    ]


def _push_bench_small(server: Server) -> None:
    config, layer, manifest = small_image()
    client = Http(server.base_url, server.auth_headers("repository:bench/small:pull,push"))
    try:
        for data in (config, layer):
            client.upload_blob("bench/small", data, f"sha256:{hashlib.sha256(data).hexdigest()}")
        for index in range(SCALE_BENCH_TAGS):
            client.put_manifest("bench/small", f"t{index}", manifest, OCI_MANIFEST)
    finally:
        client.close()
    if server.authenticated:  # docker-style: logged in once, before anything is timed
        server.token(SCOPE)
        server.token("registry:catalog:*")


def seed(server: Server, repos: int, tags: int) -> float:
    """Insert ``repos`` repositories ``seed/rNNNNN`` with ``tags`` tags in all into ``server``'s
    SQLite database through the metadata layer; returns the seconds it took."""
    from sqlalchemy import insert  # the venv's modelyard: same schema as any --rev under test

    from modelyard.metadata import tables as t
    from modelyard.metadata.sql import create_metadata_engine
    from modelyard.metadata.sql_base import insert_repository
    from modelyard.storage.paths import sqlite_path

    _, _, manifest = small_image()
    digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    per_repo = max(1, tags // max(repos, 1))
    now = datetime.now(UTC)
    engine = create_metadata_engine(f"sqlite:///{sqlite_path((server.root / 'data').resolve())}")
    start = time.perf_counter()
    try:
        with engine.begin() as conn:
            ids = [insert_repository(conn, f"seed/r{i:05d}", created_by="bench-seed", values={}) for i in range(repos)]
            conn.execute(
                insert(t.manifests),
                [{"repository_id": rid, "digest": digest, "media_type": OCI_MANIFEST, "size": len(manifest),
                  "content": manifest, "created_at": now} for rid in ids],
            )  # fmt: skip
            batch: list[dict[str, Any]] = []
            for rid in ids:
                batch += [{"repository_id": rid, "name": f"v{j:04d}", "manifest_digest": digest, "lifetime_start": now}
                          for j in range(per_repo)]  # fmt: skip
                if len(batch) >= 20_000:
                    conn.execute(insert(t.tags), batch)
                    batch = []
            if batch:
                conn.execute(insert(t.tags), batch)
    finally:
        engine.dispose()
    return time.perf_counter() - start


def run_scale(args: argparse.Namespace, ctx: Context, src: Path | None, root: Path) -> dict[str, Any]:
    """The scale suite (see the module docstring); the result has a printable ``report``."""
    middle = f"seed/r{args.scale_repos // 2:05d}"
    loads = _workloads(middle)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    seed_seconds: list[float] = []
    for repeat in range(args.repeats):
        log(f"=== scale run {repeat + 1} of {args.repeats} ===")
        servers = {
            "distribution": Server("distribution", "distribution", root / "scale-dist"),
            "modelyard": Server("modelyard", f"modelyard[w{args.workers}]", root / "scale-my",
                                workers=args.workers, src=src, auth=args.auth),
            "modelyard-seeded": Server("modelyard", f"modelyard[w{args.workers},seeded]", root / "scale-seeded",
                                       workers=args.workers, src=src, auth=args.auth),
        }  # fmt: skip
        try:
            for server in servers.values():
                server.start()
                _push_bench_small(server)
            seconds = seed(servers["modelyard-seeded"], args.scale_repos, args.scale_tags)
            seed_seconds.append(seconds)
            log(f"seeded {args.scale_repos} repositories, {args.scale_tags} tags in {seconds:.1f} s")
            for name, path, headers, scope in loads:
                for role in ROLES:
                    server = servers[role]
                    if role == "distribution" and name.startswith("scale-catalog-middle"):
                        continue  # its catalog is one repository: no middle
                    log(f"{name}: {server.label}")
                    metrics = measure(server, lambda s=server, p=path, h=headers, sc=scope: _wrk(ctx, s, p, h, sc))  # type: ignore[misc]
                    metrics["repeat"] = repeat
                    samples.setdefault(name, {}).setdefault(role, []).append(metrics)
                    log(f"  req/s {metrics['req_s']:.0f}, p99 {metrics['p99_ms']:.1f} ms")
        except BaseException:
            for server in servers.values():
                server.stop()
            log(f"server logs kept in {root}")
            raise
        for server in servers.values():
            server.stop()
    summary = _summarize(samples)
    result: dict[str, Any] = {
        "meta": {"repos": args.scale_repos, "tags": args.scale_tags, "seed_seconds": seed_seconds,
                 "auth": args.auth, "workers": args.workers, "repeats": args.repeats},
        "workloads": {name: {**entry, "samples": samples[name]} for name, entry in summary.items()},
    }  # fmt: skip
    result["targets"] = _targets(summary)
    result["report"] = _report(summary, result)
    return result


def _summarize(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, runs in samples.items():
        entry: dict[str, Any] = {}
        for role, values in runs.items():
            entry[role] = {m.key: median([v[m.key] for v in values]) for m in METRICS}
        base, seeded = entry.get("modelyard"), entry.get("modelyard-seeded")
        dist = entry.get("distribution")
        entry["seeded_over_empty"] = seeded["req_s"] / base["req_s"] if base and seeded and base["req_s"] else None
        entry["empty_over_dist"] = base["req_s"] / dist["req_s"] if base and dist and dist["req_s"] else None
        entry["seeded_over_dist"] = seeded["req_s"] / dist["req_s"] if seeded and dist and dist["req_s"] else None
        summary[name] = entry
    return summary


def _targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in ("scale-manifest-get", "scale-tags-list"):
        value = summary.get(name, {}).get("seeded_over_empty")
        rows.append({"target": f"{name}: seeded req/s ÷ empty req/s", "op": ">=", "threshold": 0.8,
                     "measured": value, "met": None if value is None else value >= 0.8})  # fmt: skip
    worst = max((e[r]["peak_rss_max_mib"] for e in summary.values() for r in ROLES[1:] if r in e), default=None)
    rows.append({"target": "peak RSS per modelyard worker MiB", "op": "<=", "threshold": 100.0, "measured": worst,
                 "met": None if worst is None else worst <= 100.0})  # fmt: skip
    return rows


def _f(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _report(summary: dict[str, Any], result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        f"scale (issue 17): modelyard empty vs seeded with {meta['repos']:,} repositories / {meta['tags']:,} tags "
        f"(seeded in {median(meta['seed_seconds']):.1f} s), Distribution 2.8.2 empty as the yardstick; "
        f"medians of {meta['repeats']}; modelyard --workers {meta['workers']}, auth {meta['auth'] or 'off'}",
        "",
        f"{'workload':<22} {'Dist req/s':>10} {'my empty':>9} {'my seeded':>10} {'seeded/empty':>13} "
        f"{'empty/Dist':>11} {'seeded/Dist':>12} {'p99 ms e/s':>12} {'CPU-ms/req e/s':>15} {'RSS/worker MiB':>13}",
        "-" * 136,
    ]
    for name, entry in summary.items():
        dist, empty, seeded = (entry.get(r) or {} for r in ROLES)
        lines.append(
            f"{name:<22} {_f(dist.get('req_s')):>10} {_f(empty.get('req_s')):>9} {_f(seeded.get('req_s')):>10} "
            f"{_f(entry['seeded_over_empty']):>13} {_f(entry['empty_over_dist']):>11} "
            f"{_f(entry['seeded_over_dist']):>12} "
            f"{_f(empty.get('p99_ms')) + '/' + _f(seeded.get('p99_ms')):>12} "
            f"{_f(empty.get('cpu_ms_per_req')) + '/' + _f(seeded.get('cpu_ms_per_req')):>15} "
            f"{_f(max(empty.get('peak_rss_max_mib', 0), seeded.get('peak_rss_max_mib', 0))):>13}"
        )
    lines += ["", "targets (issue 17, scale):"]
    for goal in result["targets"]:
        verdict = "n/a" if goal["met"] is None else ("MET" if goal["met"] else "MISSED")
        lines.append(f"  {goal['target']:<52} {goal['op']} {goal['threshold']:<5g} measured {_f(goal['measured']):>7}"
                     f"  {verdict}")  # fmt: skip
    if any(name.startswith("scale-catalog") for name in summary):
        lines.append("  (catalog pages: the empty registries list 1 repository, the seeded one 100 per page)")
    return "\n".join(lines)
