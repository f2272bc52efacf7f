"""Medians, ratios, the targets from issue #5, and the printed table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from common import median
from workloads import Workload

REGISTRIES = ("distribution", "modelyard")

LIMIT_LABELS = {
    "sha256_openssl": "SHA-256, one core (openssl speed -evp sha256, 1 MiB)",
    "sha256_hashlib": "SHA-256, Python hashlib, 1 MiB updates",
    "disk_write_fsync": "disk write + fsync (dd conv=fsync)",
    "loopback_sendfile": "one loopback TCP stream, sendfile -> recv_into",
}


def summarize(workloads: Sequence[Workload], samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Per workload: each registry's median of every metric, and modelyard ÷ Distribution."""
    summary: dict[str, Any] = {}
    for workload in workloads:
        runs = samples.get(workload.name)
        if not runs:
            continue
        entry: dict[str, Any] = {}
        for registry in REGISTRIES:
            keys = sorted({key for sample in runs.get(registry, []) for key in sample})
            entry[registry] = {key: median([s[key] for s in runs[registry] if key in s]) for key in keys}
        entry["ratio"] = {
            metric.key: _ratio(entry["modelyard"].get(metric.key), entry["distribution"].get(metric.key))
            for metric in workload.metrics
        }
        pairs = list(zip(runs.get("distribution", []), runs.get("modelyard", []), strict=False))
        primary = workload.metrics[0].key
        entry["paired_ratios"] = [_ratio(b.get(primary), a.get(primary)) for a, b in pairs]
        summary[workload.name] = entry
    return summary


def _ratio(mine: float | None, theirs: float | None) -> float:
    if mine is None or theirs is None or theirs == 0 or math.isnan(mine) or math.isnan(theirs):
        return float("nan")
    return mine / theirs


# name, how to measure it, comparison, threshold
def targets(summary: dict[str, Any], limits: dict[str, float], auth: str | None = None) -> list[dict[str, Any]]:
    def ratio(workload: str, key: str) -> float | None:
        return summary[workload]["ratio"][key] if workload in summary else None

    def mine(workload: str, key: str) -> float | None:
        return summary[workload]["modelyard"].get(key) if workload in summary else None

    def fraction(workload: str, key: str, limit: str) -> float | None:
        value = mine(workload, key)
        if value is None or not limits.get(limit):
            return None
        return value / limits[limit]

    rows: list[tuple[str, float | None, str, float]] = [
        ("monolithic upload, modelyard ÷ Distribution", ratio("upload-mono", "MBps"), ">=", 3.0),
        ("chunked upload, modelyard ÷ Distribution", ratio("upload-chunked", "MBps"), ">=", 3.0),
        ("monolithic upload, modelyard server CPU-s/GB", mine("upload-mono", "cpu_s_per_GB"), "<=", 2.0),
        ("chunked upload, modelyard server CPU-s/GB", mine("upload-chunked", "cpu_s_per_GB"), "<=", 2.0),
        ("blob GET, modelyard ÷ Distribution", ratio("blob-get", "MBps"), ">=", 1.2),
        ("Range GET, modelyard ÷ Distribution", ratio("range-get", "MBps"), ">=", 1.2),
        ("manifest GET by tag req/s, modelyard ÷ Distribution", ratio("manifest-get", "req_s"), ">=", 6.0),
        ("tags/list req/s, modelyard ÷ Distribution", ratio("tags-list", "req_s"), ">=", 6.0),
        ("parallel pushes, modelyard ÷ Distribution", ratio("parallel-push", "MBps"), ">=", 1.8),
        ("skopeo push, modelyard ÷ Distribution", ratio("skopeo-push", "MBps"), ">=", 1.0),
        ("skopeo pull, modelyard ÷ Distribution", ratio("skopeo-pull", "MBps"), ">=", 1.0),
        ("big upload+download, modelyard peak RSS MiB", mine("big-transfer", "peak_rss_mib"), "<=", 100.0),
        ("upload stream ÷ one core's SHA-256 (openssl)", fraction("upload-mono", "MBps", "sha256_openssl"), ">=", 0.5),
        ("blob GET ÷ loopback sendfile", fraction("blob-get", "MBps", "loopback_sendfile"), ">=", 0.85),
    ]
    if auth:  # issue 17: modelyard with auth on (docker- or crane-style) against Distribution without
        rss = [e["modelyard"].get("peak_rss_max_mib") for e in summary.values() if e["modelyard"]]
        rows += [
            (f"(17) manifest GET, auth {auth}, ÷ Distribution no auth", ratio("manifest-get", "req_s"), ">=", 5.0),
            (f"(17) blob GET, auth {auth}, ÷ Distribution no auth", ratio("blob-get", "MBps"), ">=", 1.1),
            ("(17) token requests/s, repeated Basic credentials", mine("token", "req_s"), ">=", 2000.0),
            ("(17) peak RSS per modelyard worker MiB", max((r for r in rss if r), default=None), "<=", 100.0),
        ]
    result = []
    for name, value, op, threshold in rows:
        if value is None or math.isnan(value):
            result.append({"target": name, "op": op, "threshold": threshold, "measured": None, "met": None})
            continue
        met = value >= threshold if op == ">=" else value <= threshold
        # how far off: >1 means that many times better than needed; <1 means short by that factor
        margin = value / threshold if op == ">=" else (threshold / value if value else float("inf"))
        result.append({"target": name, "op": op, "threshold": threshold, "measured": value, "met": met,
                       "margin": margin})  # fmt: skip
    return result


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_report(
    workloads: Sequence[Workload],
    summary: dict[str, Any],
    limits: dict[str, float],
    goals: list[dict[str, Any]],
    meta: dict[str, Any],
) -> str:
    machine = meta["machine"]
    lines = [
        f"modelyard vs CNCF Distribution {meta.get('distribution_version', '?')} -- medians of "
        f"{meta['repeats']} run(s), alternating A B A B (A = Distribution, B = modelyard)",
        f"modelyard: --workers {meta['blob_workers']} for single-stream workloads, --workers {meta['workers']} "
        "for concurrent ones (marked *), --no-access-log, "
        + (f"auth on ({meta['auth']}-style clients)" if meta.get("auth") else "auth off")
        + "".join(f", {k}={v}" for k, v in meta.get("modelyard_env", {}).items())
        + "; Distribution: stock filesystem driver (never fsyncs), no auth",
        f"modelyard source: {meta['modelyard_source']}; load average {machine['loadavg_start'][0]:.1f} at start, "
        f"{machine['loadavg_end'][0]:.1f} at end ({machine['cpus']} CPUs)",
        f"sizes: blob {meta['sizes']['blob']}, chunk {meta['sizes']['chunk']}, model weights "
        f"{meta['sizes']['model']}, parallel {meta['sizes']['parallel']}, big {meta['sizes']['big']}; "
        f"wrk -t{meta['wrk']['threads']} -c{meta['wrk']['connections']} -d{meta['wrk']['seconds']:g}s",
        "",
        f"{'workload':<16} {'metric':<22} {'Distribution':>13} {'modelyard':>11} {'ratio my/dist':>14}",
        "-" * 80,
    ]
    for workload in workloads:
        entry = summary.get(workload.name)
        if entry is None:
            continue
        name = workload.name + (" *" if workload.concurrent else "")
        for index, metric in enumerate(workload.metrics):
            arrow = "↑" if metric.higher_is_better else "↓"
            lines.append(
                f"{name if index == 0 else '':<16} {metric.label + ' ' + arrow:<22} "
                f"{_fmt(entry['distribution'].get(metric.key)):>13} {_fmt(entry['modelyard'].get(metric.key)):>11} "
                f"{_fmt(entry['ratio'].get(metric.key)):>14}"
            )
    lines += ["", "physical limits (medians, MB/s):"]
    for key, label in LIMIT_LABELS.items():
        if key in limits:
            lines.append(f"  {label:<56} {_fmt(limits[key]):>8}")
    lines += ["", "targets (issue #5):"]
    for goal in goals:
        if goal["met"] is None:
            verdict = "n/a (workload not run)"
        elif goal["met"]:
            verdict = f"MET    ({goal['margin']:.2f}x the target)"
        else:
            verdict = f"MISSED (at {goal['margin']:.2f} of the target)"
        measured = _fmt(goal["measured"])
        lines.append(f"  {goal['target']:<52} {goal['op']} {goal['threshold']:<5g} measured {measured:>7}  {verdict}")
    return "\n".join(lines)
