"""Diff of versions pushed by ``modelyard push`` (the CLI for v1 and v2, the SDK for the rest) on a
live registry, on SQLite and PostgreSQL: v2 changes one weights file, v3 adds and removes files,
a copy in another repository differs only in its name; the CLI's ``diff`` and ``lineage`` in text and
JSON, the SDK's ``diff``, and unknown references answered 404 (exit code 4), never 500."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.sdk import Registry
from tests.cli.liveserver import LiveServer, live_server
from tests.models.support import make_model, write_weights


class Pushed:
    def __init__(self, server: LiveServer, root: Path, digests: dict[str, str]) -> None:
        self.server = server
        self.root = root
        self.d = digests


def cli(server: LiveServer, *args: str, code: int = 0) -> str:
    runner = CliRunner(env={"MODELYARD_URL": None, "COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, [*args, "--registry", server.url])
    assert result.exit_code == code, f"{args}: {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout if code == 0 else result.stderr


def _size(directory: Path, name: str) -> int:
    return (directory / name).stat().st_size


@pytest.fixture(scope="module")
def pushed(database_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    root = tmp_path_factory.mktemp("diff")
    settings: dict[str, Any] = {"database_url": database_url} if database_url else {}
    with live_server(data_dir=root / "data", **settings) as server:
        v1 = make_model(root / "v1", seed=1)
        out = json.loads(cli(server, "push", str(v1), "acme/llm:v1", "--json", "--quiet"))
        d = {"v1": out["digest"]}
        v2 = root / "v2"
        shutil.copytree(v1, v2)
        write_weights(v2 / "model.safetensors", seed=2, rows=96)  # one file changes (and the count)
        out = json.loads(
            cli(server, "push", str(v2), "acme/llm:v2", "--base", f"acme/llm@{d['v1']}", "--json", "--quiet")
        )
        d["v2"] = out["digest"]
        assert out["sent_bytes"] < _size(v2, "model.safetensors") + 64 * 1024  # only that file and the manifest
        v3 = root / "v3"
        shutil.copytree(v2, v3)
        (v3 / "LICENSE").unlink()
        make_model(root / "extra", seed=2, rows=96, extra=True)
        shutil.copytree(root / "extra" / "src", v3 / "src")
        with Registry(server.url) as sdk:
            d["v3"] = sdk.push_model(v3, "acme/llm:v3").digest
            d["copy"] = sdk.push_model(v1, "other/copy:v1").digest
        yield Pushed(server, root, d)


def test_v2_changes_one_file(pushed: Pushed) -> None:
    body = json.loads(cli(pushed.server, "diff", "acme/llm:v1", "acme/llm:v2", "--json"))
    v1, v2 = pushed.root / "v1", pushed.root / "v2"
    assert body["a"]["digest"] == pushed.d["v1"] and body["b"]["digest"] == pushed.d["v2"]
    assert body["added"] == [] and body["removed"] == []
    assert [(c["path"], c["old_size"], c["new_size"]) for c in body["changed"]] == [
        ("model.safetensors", _size(v1, "model.safetensors"), _size(v2, "model.safetensors"))
    ]
    assert body["unchanged"] == 4
    others = sum(_size(v1, name) for name in ("config.json", "tokenizer.json", "README.md", "LICENSE"))
    assert body["shared_bytes"] == others
    assert body["changed_bytes"] == _size(v2, "model.safetensors")
    fields = {c["field"]: (c["old"], c["new"]) for c in body["metadata"]}
    old_params, new_params = fields["parameters"]
    assert new_params > old_params
    assert fields["total_size"] == (body["a"]["size"], body["b"]["size"])
    notes = {c["field"]: (c["old"], c["new"]) for c in body["annotations"]}
    assert notes["org.opencontainers.image.base.digest"] == (None, pushed.d["v1"])

    text = cli(pushed.server, "diff", "acme/llm:v1", "acme/llm:v2")
    assert "1 changed, 4 unchanged" in text and "~ model.safetensors" in text and "parameters:" in text


def test_files_added_and_removed_through_the_sdk(pushed: Pushed) -> None:
    with Registry(pushed.server.url) as sdk:
        found = sdk.diff("acme/llm:v2", f"acme/llm@{pushed.d['v3']}")
    assert [e.path for e in found.added] == ["src/modeling.py"]
    assert [e.path for e in found.removed] == ["LICENSE"]
    assert found.changed == [] and found.unchanged == 4


def test_a_copy_in_another_repository_shares_everything(pushed: Pushed) -> None:
    body = json.loads(cli(pushed.server, "diff", "acme/llm:v1", "other/copy:v1", "--json"))
    assert body["b"]["repository"] == "other/copy"
    assert body["added"] == body["removed"] == body["changed"] == []
    # The push names the model after its repository: that is all that differs.
    assert body["metadata"] == [{"field": "name", "old": "llm", "new": "copy"}] and body["annotations"] == []
    assert body["shared_bytes"] == body["a"]["size"] == body["b"]["size"] and body["changed_bytes"] == 0


def test_lineage_of_a_push_with_base(pushed: Pushed) -> None:
    body = json.loads(cli(pushed.server, "lineage", "acme/llm:v2", "--json"))
    assert [(n["repository"], n["digest"]) for n in body["ancestors"]] == [("acme/llm", pushed.d["v1"])]
    assert body["edges"] == [
        {"child": f"acme/llm@{pushed.d['v2']}", "parent": f"acme/llm@{pushed.d['v1']}", "relation": "base"}
    ]
    text = cli(pushed.server, "lineage", "acme/llm:v1")
    assert "derived by  base" in text and "acme/llm@" + pushed.d["v2"][:12] in text and "(v2)" in text


def test_the_against_form_is_the_same_diff(pushed: Pushed) -> None:
    base = "/api/v1/repositories/acme/llm/-/versions/v1/diff"
    with httpx.Client(base_url=pushed.server.url) as http:
        by_path = http.get(f"{base}/v1", params={"repository": "other/copy"}).json()
        for against in ("other/copy:v1", f"other/copy@{pushed.d['copy']}"):
            assert http.get(base, params={"against": against}).json() == by_path, against
        same_repository = http.get(f"{base}/v2").json()
        for against in ("v2", pushed.d["v2"], "acme/llm:v2"):
            assert http.get(base, params={"against": against}).json() == same_repository, against
        missing = http.get(base)
        assert missing.status_code == 422 and "against" in missing.text
        for against in ("", " v2", "Not A Name:v1"):  # no reference holds whitespace
            assert http.get(base, params={"against": against}).status_code == 422, against
        for against in ("acme/llm:nope", "other/none:v1", "NotAName:v1", "@sha256:zz"):
            assert http.get(base, params={"against": against}).status_code == 404, against


def test_unknown_references_are_404_not_500(pushed: Pushed) -> None:
    assert "does not exist" in cli(pushed.server, "diff", "acme/llm:v1", "acme/llm:nope", code=4)
    assert "does not exist" in cli(pushed.server, "diff", "acme/llm:nope", "acme/llm:v1", code=4)
    cli(pushed.server, "diff", "acme/llm:v1", "acme/none:v1", code=4)
    cli(pushed.server, "lineage", "acme/llm:nope", code=4)
    with httpx.Client(base_url=pushed.server.url) as http:
        base = "/api/v1/repositories/acme/llm/-/versions"
        for path in (f"{base}/v1/diff/sha256:zz", f"{base}/v1/diff/v9", f"{base}/nope/lineage", f"{base}/@/lineage"):
            response = http.get(path)
            assert response.status_code == 404, (path, response.text)
        response = http.get(f"{base}/v1/diff/v2", params={"repository": "Not A Name"})
        assert response.status_code in (400, 404), response.text
