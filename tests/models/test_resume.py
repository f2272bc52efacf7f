"""A push killed mid-upload (SIGKILL, no goodbye) resumes on the next run from the offset the
registry acknowledged: the second run sends less than the file, and the result is byte-exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modelyard.sdk import Registry
from tests.interop.serverproc import ServerProcess
from tests.models.support import make_model, tree

pytestmark = pytest.mark.interop

MiB = 1024 * 1024
SIZE = 96 * MiB


def push_command(server: ServerProcess, model: Path, reference: str) -> list[str]:
    return [sys.executable, "-m", "modelyard", "push", str(model), reference, "--registry", server.url,
            "--chunk-size", str(MiB), "--jobs", "1", "--json"]  # fmt: skip


def acknowledged(server: ServerProcess, state_dir: Path) -> int:
    """Bytes the registry acknowledged for the upload the client recorded (0 if none yet)."""
    for state in state_dir.glob("*.json"):
        try:
            location = json.loads(state.read_text())["location"]
        except (OSError, ValueError, KeyError):
            continue
        response = httpx.get(location if "://" in location else server.url + location, timeout=10)
        if response.status_code == 204:
            end = int(response.headers["Range"].split("-")[1])
            return end + 1 if end else 0
    return 0


def test_push_resumes_after_the_client_is_killed(served: ServerProcess, config_dir: Path, tmp_path: Path) -> None:
    model = make_model(tmp_path / "big")
    with open(model / "weights.bin", "wb") as handle:
        for _ in range(SIZE // MiB):
            handle.write(os.urandom(MiB))
    environment = {**os.environ, "MODELYARD_CONFIG_DIR": str(config_dir)}
    client = subprocess.Popen(push_command(served, model, "acme/big:v1"), env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    offset = 0
    try:
        while time.monotonic() < deadline and client.poll() is None:
            offset = acknowledged(served, config_dir / "uploads")
            if offset >= 4 * MiB:
                client.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if client.poll() is None:
            client.kill()
        client.communicate(timeout=30)
    assert client.returncode == -signal.SIGKILL, f"the push ended by itself ({client.returncode}) before the kill"
    assert 4 * MiB <= offset < SIZE
    assert list((config_dir / "uploads").glob("*.json")), "the upload URL was kept for the next run"

    rerun = subprocess.run(push_command(served, model, "acme/big:v1"), env=environment, capture_output=True,
                           text=True, timeout=120, check=False)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["resumed_files"] == 1
    small_files = sum(p.stat().st_size for p in model.iterdir() if p.name != "weights.bin")
    assert result["sent_bytes"] < SIZE, "the second run sent less than the file"
    assert result["sent_bytes"] <= SIZE - offset + small_files + 64 * 1024
    assert not list((config_dir / "uploads").glob("*.json")), "state is dropped once the blob is committed"

    with Registry(served.url) as registry:
        registry.pull_model("acme/big:v1", tmp_path / "pulled")
    assert tree(tmp_path / "pulled") == tree(model)
