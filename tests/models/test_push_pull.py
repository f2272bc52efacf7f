"""``modelyard push``/``pull`` and the SDK against a real registry on a real socket (in-process
live server, auth off): round trips, ``--include``, skip-existing byte counts, v2 with one changed
file, mounts from ``--base``, path-escape refusals, and ModelKit / Docker model artifacts."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.client.oci import OciClient, sha256_digest
from modelyard.sdk import NotFoundError, ProgressEvent, Registry, UnsafePathError
from tests.cli.liveserver import LiveServer, live_server
from tests.models.support import make_model, tree, write_weights

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 4


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("MODELYARD_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("MODELYARD_API_KEY", raising=False)
    monkeypatch.delenv("MODELYARD_URL", raising=False)
    with live_server(data_dir=tmp_path / "registry") as running:
        yield running


@pytest.fixture
def registry(server: LiveServer) -> Iterator[Registry]:
    with Registry(server.url) as client:
        yield client


def cli(server: LiveServer, *args: str, code: int = EXIT_OK) -> Any:
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, [*args, "--registry", server.url])
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    if code != EXIT_OK:
        assert result.stderr.strip() and "Traceback" not in result.output
    return result


def test_cli_round_trip(server: LiveServer, tmp_path: Path) -> None:
    model = make_model(tmp_path / "tiny", extra=True)
    pushed = json.loads(cli(server, "push", str(model), "acme/tiny:v1", "--json", "-a", "org.example.stage=dev").stdout)
    assert pushed["reference"] == "acme/tiny:v1" and pushed["files"] == 7
    assert pushed["skipped_files"] == 0 and pushed["sent_bytes"] > pushed["total_bytes"]
    assert pushed["config"]["config"]["format"] == "safetensors"

    manifest = httpx.get(f"{server.url}/v2/acme/tiny/manifests/v1",
                         headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == pushed["digest"]
    assert manifest.json()["annotations"]["org.example.stage"] == "dev"

    out = tmp_path / "out"
    text = cli(server, "pull", "acme/tiny:v1", str(out)).stdout
    assert f"pulled acme/tiny:v1 {pushed['digest']}" in text and "7 files" in text
    assert tree(out) == tree(model)
    assert (out / "model.safetensors").stat().st_mtime == pytest.approx((model / "model.safetensors").stat().st_mtime)
    assert not list(out.rglob(".*partial")), "no partial files left behind"

    again = json.loads(cli(server, "pull", "acme/tiny:v1", str(out), "--json").stdout)
    assert again["downloaded_bytes"] == 0 and again["skipped_files"] == 7

    summary = cli(server, "push", str(model), "acme/tiny:v1").stdout
    assert "skipped" in summary and "(7 files already there)" in summary


def test_sdk_round_trip_with_progress_and_include(registry: Registry, tmp_path: Path) -> None:
    model = make_model(tmp_path / "tiny", rows=512)
    events: list[ProgressEvent] = []
    result = registry.push_model(model, "acme/sdk:v1", progress=events.append, jobs=3)
    assert result.files == 5 and result.skipped_files == 0
    uploaded = sum(e.nbytes for e in events if e.kind == "advance" and e.phase == "upload")
    assert uploaded == result.total_bytes
    assert {e.phase for e in events if e.kind == "start"} == {"hash", "upload"}
    assert registry.tags("acme/sdk") == ["v1"]

    pulled = registry.pull_model("acme/sdk:v1", tmp_path / "all")
    assert pulled.digest == result.digest and tree(tmp_path / "all") == tree(model)
    by_digest = registry.pull_model(f"acme/sdk@{result.digest}", tmp_path / "by-digest")
    assert by_digest.files == sorted(tree(model))

    only = registry.pull_model(
        "acme/sdk:v1", tmp_path / "tok", include=["tokenizer*", "*.json"], exclude=["config.json"]
    )
    assert only.files == ["tokenizer.json"]
    assert sorted(tree(tmp_path / "tok")) == ["tokenizer.json"]

    with pytest.raises(NotFoundError) as missing:
        registry.pull_model("acme/sdk:nope", tmp_path / "nope")
    assert missing.value.code == "MANIFEST_UNKNOWN" and missing.value.status == 404


def test_skip_existing_and_v2_sends_only_the_changed_file(registry: Registry, tmp_path: Path) -> None:
    model = make_model(tmp_path / "ft", rows=2048)  # weights ~1.3 MiB
    first = registry.push_model(model, "acme/ft:v1")
    weights = (model / "model.safetensors").stat().st_size
    assert first.sent_bytes >= first.total_bytes

    unchanged = registry.push_model(model, "acme/ft:v1")
    assert unchanged.digest == first.digest
    assert unchanged.skipped_files == 5 and unchanged.skipped_bytes >= first.total_bytes
    assert unchanged.sent_bytes == len(unchanged.manifest), "an unchanged re-push sends only the manifest"

    write_weights(model / "model.safetensors", seed=2, rows=2048)
    v2 = registry.push_model(model, "acme/ft:v2")
    new_weights = (model / "model.safetensors").stat().st_size
    assert v2.skipped_files == 4
    config_and_manifest = len(v2.manifest) + len(json.dumps(v2.config, indent=2))
    assert v2.sent_bytes == new_weights + config_and_manifest
    assert v2.sent_bytes < weights + 64 * 1024


def test_base_mounts_blobs_from_another_repository(registry: Registry, server: LiveServer, tmp_path: Path) -> None:
    model = make_model(tmp_path / "base", rows=1024)
    base = registry.push_model(model, "acme/base:v1")
    (model / "adapter.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:100] + b"x")
    derived = registry.push_model(model, "team/derived:v1", base=f"acme/base@{base.digest}")
    assert derived.mounted_files == 5 and derived.skipped_files == 5
    assert derived.sent_bytes < (model / "adapter.safetensors").stat().st_size + 16 * 1024
    annotations = registry.manifest("team/derived:v1")["annotations"]
    assert annotations["org.opencontainers.image.base.name"] == "acme/base"
    assert annotations["org.opencontainers.image.base.digest"] == base.digest
    assert tree(Path(registry.pull_model("team/derived:v1", tmp_path / "d").destination)) == tree(model)


def test_pack_errors_are_usage_errors(server: LiveServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no files to push" in cli(server, "push", str(empty), "acme/x:v1", code=EXIT_USAGE).stderr
    model = make_model(tmp_path / "m")
    (model / "leak").symlink_to("/etc/hostname")
    assert "symlink leading out" in cli(server, "push", str(model), "acme/x:v1", code=EXIT_USAGE).stderr
    (model / "leak").unlink()
    assert "REPO@DIGEST" in cli(server, "push", str(model), "acme/x:v1", "--base", "acme/y", code=EXIT_USAGE).stderr
    assert "KEY=VALUE" in cli(server, "push", str(model), "acme/x:v1", "-a", "novalue", code=EXIT_USAGE).stderr
    assert "MANIFEST_UNKNOWN" in cli(server, "pull", "acme/none:v1", str(tmp_path / "o"), code=EXIT_NOT_FOUND).stderr


def _push_raw(client: OciClient, repository: str, tag: str, layers: list[tuple[str, bytes, dict[str, str]]]) -> str:
    config = b"{}"
    client.upload_bytes(repository, config)
    descriptors = []
    for media_type, data, notes in layers:
        client.upload_bytes(repository, data)
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
        if notes:
            descriptor["annotations"] = notes
        descriptors.append(descriptor)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(config),
                           "size": len(config)}, "layers": descriptors}  # fmt: skip
    return client.put_manifest(repository, tag, json.dumps(manifest).encode())


@pytest.mark.parametrize("path", ["../x", "/etc/x", "a/../../x", "ok/../../../x"])
def test_pull_refuses_paths_that_escape(registry: Registry, tmp_path: Path, path: str) -> None:
    good = ("application/vnd.cncf.model.doc.v1.raw", b"fine", {"org.cncf.model.filepath": "README.md"})
    bad = ("application/vnd.cncf.model.weight.v1.raw", b"evil", {"org.cncf.model.filepath": path})
    _push_raw(registry.oci, "acme/evil", "v1", [good, bad])
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(UnsafePathError, match="refusing to write"):
        registry.pull_model("acme/evil:v1", dest)
    assert not (dest / "README.md").exists(), "nothing is written when one path is refused"
    assert not (tmp_path / "dest" / "x").exists() and not (tmp_path / "x").exists()


def test_pull_refuses_to_write_through_a_symlink(server: LiveServer, registry: Registry, tmp_path: Path) -> None:
    layer = ("application/vnd.cncf.model.doc.v1.raw", b"data", {"org.cncf.model.filepath": "sub/file.txt"})
    _push_raw(registry.oci, "acme/link", "v1", [layer])
    dest = tmp_path / "dest"
    dest.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (dest / "sub").symlink_to(elsewhere)
    result = cli(server, "pull", "acme/link:v1", str(dest), code=EXIT_USAGE)
    assert "symlink" in result.stderr
    assert not (elsewhere / "file.txt").exists()


def _tar(files: dict[str, bytes], *, compress: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def test_pull_a_kitops_modelkit_and_a_docker_model(registry: Registry, tmp_path: Path) -> None:
    weights = b"GGUF" + bytes(1000)
    kit = [
        ("application/vnd.kitops.modelkit.model.v1.tar+gzip", _tar({"models/model.gguf": weights}, compress=True),
         {"org.cncf.model.filepath": "models/model.gguf"}),
        ("application/vnd.kitops.modelkit.docs.v1.tar", _tar({"README.md": b"# kit"}, compress=False),
         {"org.cncf.model.filepath": "README.md"}),
    ]  # fmt: skip
    _push_raw(registry.oci, "acme/kit", "v1", kit)
    pulled = registry.pull_model("acme/kit:v1", tmp_path / "kit")
    assert pulled.files == ["README.md", "models/model.gguf"]
    assert (tmp_path / "kit" / "models" / "model.gguf").read_bytes() == weights

    evil = [("application/vnd.kitops.modelkit.code.v1.tar", _tar({"../evil.py": b"x"}, compress=False), {})]
    _push_raw(registry.oci, "acme/kit", "evil", evil)
    with pytest.raises(UnsafePathError):
        registry.pull_model("acme/kit:evil", tmp_path / "kit2")
    assert not (tmp_path / "evil.py").exists()

    docker = [
        ("application/vnd.docker.ai.gguf.v3", weights, {}),
        ("application/vnd.docker.ai.license", b"MIT License", {}),
    ]
    _push_raw(registry.oci, "ai/smollm", "latest", docker)
    pulled = registry.pull_model("ai/smollm", tmp_path / "docker")
    assert pulled.files == ["LICENSE", "model.gguf"]
    assert (tmp_path / "docker" / "model.gguf").read_bytes() == weights


def test_pull_resumes_a_partial_file_and_replaces_a_wrong_one(registry: Registry, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", rows=1024)
    registry.push_model(model, "acme/resume:v1")
    dest = tmp_path / "dest"
    dest.mkdir()
    data = (model / "model.safetensors").read_bytes()
    (dest / ".model.safetensors.modelyard-partial").write_bytes(data[: len(data) // 2])
    (dest / "config.json").write_text("{}")  # wrong content: replaced
    result = registry.pull_model("acme/resume:v1", dest)
    assert tree(dest) == tree(model)
    total = sum(p.stat().st_size for p in model.iterdir())
    assert result.downloaded_bytes == total - len(data) // 2


def test_sdk_reads_what_the_registry_understood(registry: Registry, tmp_path: Path) -> None:
    model = make_model(tmp_path / "facts")
    pushed = registry.push_model(model, "acme/facts:v1")
    version = registry.model("acme/facts:v1")
    assert version.digest == pushed.digest and version.status == "indexed"
    assert version.format == "safetensors" and version.parameters == 20_544
    assert version.license is not None and "apache-2.0" in version.license.lower()
    assert version.file_count == 5
    assert sorted(f.path for f in version.files) == sorted(tree(model))
    assert [v.digest for v in registry.versions("acme/facts")] == [pushed.digest]
    found = registry.search(format="safetensors", limit=10)
    assert [(m.repository, m.digest) for m in found] == [("acme/facts", pushed.digest)]
    assert registry.read_file("acme/facts:v1", "config.json") == (model / "config.json").read_bytes()
    assert registry.read_file(f"acme/facts@{pushed.digest}", "README.md", start=0, end=2) == b"---"


def test_a_registry_host_in_the_reference(server: LiveServer, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m")
    runner = CliRunner(env={"MODELYARD_URL": None})
    pushed = runner.invoke(app, ["push", str(model), f"{server.host}/acme/hosted:v1", "--quiet"])
    assert pushed.exit_code == 0, pushed.output
    assert "pushed acme/hosted:v1" in pushed.stdout
    pulled = runner.invoke(app, ["pull", f"{server.host}/acme/hosted:v1", str(tmp_path / "out"), "-x", "*.safetensors"])
    assert pulled.exit_code == 0, pulled.output
    assert sorted(tree(tmp_path / "out")) == ["LICENSE", "README.md", "config.json", "tokenizer.json"]
