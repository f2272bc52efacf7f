"""``modelyard repo versions``, ``modelyard model show`` and ``modelyard search`` against a live
registry holding a model pushed through ``/v2``, and the admin client's file reads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.client import AdminClient, ApiError
from tests.api.models.builders import (
    CONFIG_RAW,
    DOC_RAW,
    HF_CONFIG,
    README,
    WEIGHT_RAW,
    llama_safetensors,
    modelpack_config,
    raw_file,
)
from tests.api.models.sync_push import push_model_sync
from tests.cli.liveserver import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path_factory.mktemp("registry")) as running:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            push_model_sync(
                http,
                "acme/tiny",
                "v1",
                modelpack_config(),
                [
                    raw_file(WEIGHT_RAW, "model.safetensors", llama_safetensors()),
                    raw_file(CONFIG_RAW, "config.json", json.dumps(HF_CONFIG).encode()),
                    raw_file(DOC_RAW, "README.md", README),
                ],
            )
        yield running


def run(server: LiveServer, *args: str, code: int = 0) -> str:
    runner = CliRunner(env={"MODELYARD_URL": None, "COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, [*args, "--registry", server.url])
    assert result.exit_code == code, f"{args}: {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout if code == 0 else result.stderr


def test_repo_versions_shows_the_model_columns(server: LiveServer) -> None:
    out = run(server, "repo", "versions", "acme/tiny")
    header = [cell for cell in out.splitlines()[0].split() if cell.isalpha()]
    assert header[:5] == ["TAG", "DIGEST", "FORMAT", "ARCH", "PARAMS"]
    for text in ("safetensors", "llama", "4.2K", "float16", "apache-2.0"):
        assert text in out, out
    listed = json.loads(run(server, "repo", "versions", "acme/tiny", "--json"))
    assert listed[0]["model"]["parameters"] == 4160


def test_model_show(server: LiveServer) -> None:
    out = run(server, "model", "show", "acme/tiny:v1")
    assert "architecture    llama" in out
    assert "parameters      4.2K (4,160)" in out
    assert "license         apache-2.0" in out
    assert "context length  8,192" in out
    assert "  # Tiny Llama" in out and "  A tiny test model." in out
    for path in ("model.safetensors", "config.json", "README.md"):
        assert path in out
    shown = json.loads(run(server, "model", "show", "acme/tiny:v1", "--json"))
    assert json.loads(run(server, "model", "show", f"acme/tiny@{shown['digest']}", "--json")) == shown
    assert "does not exist" in run(server, "model", "show", "acme/tiny:v9", code=4)


def test_search(server: LiveServer) -> None:
    found = json.loads(
        run(server, "search", "--arch", "llama", "--license", "apache-2.0", "--min-params", "1K", "--format",
            "safetensors", "--json")
    )  # fmt: skip
    assert [(i["repository"], i["tags"]) for i in found] == [("acme/tiny", ["v1"])]
    assert json.loads(run(server, "search", "--min-params", "1B", "--json")) == []
    assert "acme/tiny" not in run(server, "search", "--quantization", "int4")
    assert "--min-params" in run(server, "search", "--min-params", "lots", code=2)
    table = run(server, "search", "-q", "acme")
    assert "acme/tiny" in table and "4.2K" in table


def test_client_reads_files(server: LiveServer) -> None:
    with AdminClient(server.url) as client:
        files = client.list_model_files("acme/tiny", "v1")
        assert [f.path for f in files] == ["model.safetensors", "config.json", "README.md"]
        assert client.read_file("acme/tiny", "v1", "README.md") == README
        assert client.read_file("acme/tiny", "v1", "README.md", start=4, end=10) == README[4:11]
        with pytest.raises(ApiError) as refused:
            client.read_file("acme/tiny", "v1", "missing.txt")
        assert refused.value.status == 404 and refused.value.code == "NOT_FOUND"
        page = client.search_models(arch="llama", min_params="1K")
        assert [i.repository for i in page.items] == ["acme/tiny"] and page.next_page is None


def test_split_reference() -> None:
    from modelyard.cli.modelinfo import split_reference

    assert split_reference("acme/llm:v1") == ("acme/llm", "v1")
    assert split_reference("acme/llm@sha256:abc") == ("acme/llm", "sha256:abc")
    assert split_reference("acme/llm") == ("acme/llm", "latest")
