"""The same client steps with each major of ``huggingface_hub`` users have: the current one (the
venv's), the previous one and 0.x, which ``transformers`` 4.x requires (``scripts/bootstrap --dev``
installs both in ``.venv/compat``), each in a child process (``client_script.py``) against the same
live registry. Per major: a
``snapshot_download`` of an alias downloads every file once, nothing the second time, only the
changed file after the alias moves (bytes counted on the server); model info, file list, tree,
one file, ``allow_patterns``; a private repository hidden without a token and read with one; the
client's own exceptions for a missing revision and a missing file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hub.support import Hub
from tests.models.support import make_model, tree

SCRIPT = Path(__file__).with_name("client_script.py")
COMPAT = Path(sys.prefix) / "compat"
# The current major, the previous one, and 0.x: what transformers 4.x (huggingface_hub < 1.0) users have.
CLIENTS = {
    "current": (None, "2."),
    "previous": (COMPAT / "huggingface_hub-1", "1."),
    "0.x": (COMPAT / "huggingface_hub-0", "0."),
}


def run(client: str, *args: str) -> dict[str, Any]:
    path, _ = CLIENTS[client]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    if path is not None:
        assert (path / "huggingface_hub").is_dir(), f"{path} is missing: run scripts/bootstrap --dev"
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=240, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def sizes(directory: Path) -> dict[str, int]:
    return {p.relative_to(directory).as_posix(): p.stat().st_size for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_major_versions(hub: Hub, tmp_path: Path, client: str) -> None:
    public, private = f"acme/pub-{client}", f"acme/priv-{client}"
    hub.create(public, public=True)
    hub.create(private, public=False)
    model = make_model(tmp_path / "m", seed=31, extra=True)
    v1 = hub.push(model, f"{public}:v1")
    hub.move(public, "prod", v1)
    cache = str(tmp_path / "cache")

    hub.served.clear()
    first = run(client, hub.url, cache, "snapshot", public, "prod")
    assert first["version"].startswith(CLIENTS[client][1])
    assert tree(Path(first["path"])) == tree(model)
    assert hub.served.downloads() == sizes(model)
    hub.served.clear()
    assert run(client, hub.url, cache, "snapshot", public, "prod")["path"] == first["path"]
    assert hub.served.downloads() == {}

    (model / "README.md").write_text("# changed\n")
    hub.move(public, "prod", hub.push(model, f"{public}:v2"))
    hub.served.clear()
    moved = run(client, hub.url, cache, "snapshot", public, "prod")
    assert moved["path"] != first["path"] and tree(Path(moved["path"])) == tree(model)
    assert hub.served.downloads() == {"README.md": len("# changed\n")}

    hub.move(private, "prod", hub.push(model, f"{private}:v1"))
    seen = run(client, hub.url, cache, "inspect", public, private, hub.reader_key)
    expected = tree(model)
    assert seen["sha"] == Path(moved["path"]).name
    assert [s[0] for s in seen["siblings"]] == sorted(expected)
    assert all("sha256:" + sha == expected[name] for name, _, sha in seen["siblings"])
    assert seen["files"] == sorted(expected)
    assert [e[1] for e in seen["tree"] if e[0] == "RepoFile"] == sorted(expected)
    assert {e[1] for e in seen["tree"] if e[0] == "RepoFolder"} == {"src", "data"}
    assert seen["config"] == (model / "config.json").read_text()
    assert seen["json_only"] == ["config.json", "tokenizer.json"]
    assert seen["private_anonymous"] == "RepositoryNotFoundError"
    assert seen["private_files"] == sorted(expected)
    assert seen["missing_revision"] == "RevisionNotFoundError"
    assert seen["missing_file"] in ("EntryNotFoundError", "RemoteEntryNotFoundError")
