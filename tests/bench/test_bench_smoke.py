"""The benchmark suite works: ``bench/run.py --smoke`` runs every workload against both registries,
and every model-client workload (modelyard push/pull, oras-py, skopeo) against modelyard.

Only that it works -- never its numbers (the machine is shared and noisy; see bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = [
    "upload-mono",
    "upload-chunked",
    "blob-get",
    "range-get",
    "manifest-get",
    "tags-list",
    "skopeo-push",
    "skopeo-pull",
    "parallel-push",
    "big-transfer",
]
MODEL_WORKLOADS = ["push-mono", "pull-mono", "push-sharded", "pull-sharded", "repush-shard"]
LIMITS = ["sha256_openssl", "sha256_hashlib", "disk_write_fsync", "loopback_sendfile"]


def _bench(tmp_path: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", *args, "--json", str(out),
         "--work-dir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=290,
        check=False,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_smoke_run_prints_the_table_and_writes_json_for_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    done = _bench(tmp_path, out)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Distribution" in done.stdout and "modelyard" in done.stdout
    assert "ratio my/dist" in done.stdout
    assert "targets (issue #5)" in done.stdout

    result = json.loads(out.read_text())
    assert sorted(result["workloads"]) == sorted(WORKLOADS)
    for name, entry in result["workloads"].items():
        for registry in ("distribution", "modelyard"):
            medians = entry[registry]
            assert medians["peak_rss_mib"] > 0, (name, registry)
            assert medians["server_cpu_s"] >= 0, (name, registry)
            primary = "req_s" if name in ("manifest-get", "tags-list") else "MBps"
            if name == "big-transfer":
                assert medians["upload_MBps"] > 0 and medians["download_MBps"] > 0, registry
            else:
                assert medians[primary] > 0, (name, registry)
            assert len(entry["samples"][registry]) == 1
    assert all(result["limits"]["median_MBps"][key] > 0 for key in LIMITS)
    assert len(result["targets"]) >= 10
    assert result["meta"]["workers"] == 2 and result["meta"]["blob_workers"] == 1

    models = result["model_clients"]
    assert sorted(models["workloads"]) == sorted(MODEL_WORKLOADS)
    for name, entry in models["workloads"].items():
        for client in ("oras", "skopeo", "modelyard"):
            assert entry[client]["MBps"] > 0 and entry[client]["client_peak_rss_mib"] > 0, (name, client)
        assert entry["ratio_vs_oras"] > 0 and entry["ratio_vs_skopeo"] > 0, name
    # The re-push sent the changed shard and the manifest, not the model: at most the shard + 1 MiB.
    repush = models["workloads"]["repush-shard"]["modelyard"]
    assert 0 < repush["sent_MiB"] <= repush["changed_MiB"] + 1
    assert "model clients (issue 10)" in done.stdout


@pytest.mark.timeout(300)
def test_auth_and_scale_workloads_run_for_both_registries(tmp_path: Path) -> None:
    """``--auth crane`` (a token fetch before every request) and ``--scale`` (the concurrency
    curves and the seeded-vs-empty suite), at smoke sizes with a few workloads: they run, and the
    modelyard-only token workload has no Distribution column."""
    out = tmp_path / "auth.json"
    done = _bench(
        tmp_path, out, "--no-bootstrap", "--no-limits", "--model-clients", "skip", "--auth", "crane",
        "--scale", "--scale-repos", "50", "--scale-tags", "500", "--only", "manifest-get,token,upload-x4,blob-get-x8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "auth on (crane-style clients)" in done.stdout
    assert "(17) token requests/s" in done.stdout and "scale (issue 17)" in done.stdout
    result = json.loads(out.read_text())
    assert result["meta"]["auth"] == "crane"
    workloads = result["workloads"]
    assert sorted(workloads) == ["blob-get-x8", "manifest-get", "token", "upload-x4"]
    assert workloads["token"]["modelyard"]["req_s"] > 0 and not workloads["token"]["distribution"]
    for name in ("manifest-get", "upload-x4", "blob-get-x8"):
        primary = "req_s" if name == "manifest-get" else "MBps"
        assert workloads[name]["distribution"][primary] > 0 and workloads[name]["modelyard"][primary] > 0, name
    scale = result["scale"]
    assert scale["meta"]["repos"] == 50
    for name in ("scale-manifest-get", "scale-tags-list", "scale-catalog"):
        for role in ("distribution", "modelyard", "modelyard-seeded"):
            assert scale["workloads"][name][role]["req_s"] > 0, (name, role)
