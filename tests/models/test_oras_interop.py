"""Interop with oras-py: an artifact pushed by ``modelyard push`` is pulled file for file by
oras-py (it names files by ``org.opencontainers.image.title``), and one pushed by oras-py is
pulled by ``modelyard pull`` (titles as paths)."""

from __future__ import annotations

import json
from pathlib import Path

import oras.client
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.sdk import Registry
from tests.interop.serverproc import ServerProcess
from tests.models.support import make_model, tree

pytestmark = pytest.mark.interop


def test_oras_pulls_what_modelyard_pushed(served: ServerProcess, config_dir: Path, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", extra=True)  # with files in subdirectories
    with Registry(served.url) as registry:
        pushed = registry.push_model(model, "acme/tiny:v1")
    client = oras.client.OrasClient(hostname=served.host, insecure=True)
    out = tmp_path / "oras-out"
    files = client.pull(target=f"{served.host}/acme/tiny:v1", outdir=str(out))
    assert len(files) == pushed.files
    assert tree(out) == tree(model)


def test_modelyard_pulls_what_oras_pushed(
    served: ServerProcess, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_model(tmp_path / "work")
    monkeypatch.chdir(work)  # oras-py pushes files below the working directory
    client = oras.client.OrasClient(hostname=served.host, insecure=True)
    names = ["model.safetensors:application/vnd.cncf.model.weight.v1.raw", "config.json", "tokenizer.json",
             "README.md"]  # fmt: skip
    response = client.push(target=f"{served.host}/acme/from-oras:v1", files=names)
    assert response.status_code in (200, 201)

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["pull", "acme/from-oras:v1", str(out), "--json", "--registry", served.url])
    assert result.exit_code == 0, result.output
    pulled = json.loads(result.stdout)
    assert pulled["files"] == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
    expected = {name: digest for name, digest in tree(work).items() if name != "LICENSE"}
    assert tree(out) == expected

    only = CliRunner().invoke(app, ["pull", "acme/from-oras:v1", str(tmp_path / "w"), "-i", "*.safetensors",
                                    "--registry", served.url])  # fmt: skip
    assert only.exit_code == 0, only.output
    assert list(tree(tmp_path / "w")) == ["model.safetensors"]
