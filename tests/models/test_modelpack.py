"""Packing a directory as ModelPack, without a registry: classification, the config, the layer
annotations the spec asks for, and the directories that can't be packed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelyard.client.modelpack import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    FILE_METADATA,
    FILEPATH,
    MEDIA_TYPES,
    UNTESTED,
    PackError,
    classify,
    files_of,
    param_size,
    parse_type_rule,
    scan,
)
from modelyard.client.transfer import UnsafePathError, pack, safe_target
from tests.models.support import make_model, tree


def test_classification_by_name_and_overrides() -> None:
    assert classify("model-00001-of-00002.safetensors") == ("weight", False)
    assert classify("gguf/llama-Q4_K_M.gguf") == ("weight", False)
    assert classify("config.json") == ("config", False)
    assert classify("tokenizer.json") == ("config", False)
    assert classify("tokenizer.model") == ("config", False)
    assert classify("vocab.txt") == ("config", False)
    assert classify("README.md") == ("doc", False)
    assert classify("LICENSE") == ("doc", False)
    assert classify("notes.txt") == ("doc", False)
    assert classify("src/modeling.py") == ("code", False)
    assert classify("requirements.txt") == ("code", False)
    assert classify("data/train.bin") == ("dataset", False)
    assert classify("eval.parquet") == ("dataset", False)
    # --type rules come first, on the name or the whole path
    assert classify("weights.dat", [parse_type_rule("weights=*.dat")]) == ("weight", False)
    assert classify("extra/notes.md", [parse_type_rule("code=extra/*")]) == ("code", False)
    with pytest.raises(PackError, match="KIND=GLOB"):
        parse_type_rule("blob")
    with pytest.raises(PackError, match="KIND=GLOB"):
        parse_type_rule("stuff=*.x")


def test_unknown_files_are_sniffed_and_marked_untested(tmp_path: Path) -> None:
    (tmp_path / "weights.raw").write_bytes(os.urandom(4096))
    (tmp_path / "model.q").write_bytes(b"GGUF" + bytes(100))
    (tmp_path / "NOTES").write_text("plain text notes\n")
    assert classify("weights.raw", source=tmp_path / "weights.raw") == ("weight", True)
    assert classify("model.q", source=tmp_path / "model.q") == ("weight", True)
    assert classify("NOTES", source=tmp_path / "NOTES") == ("doc", True)


def test_pack_a_hugging_face_directory(tmp_path: Path) -> None:
    model = make_model(tmp_path / "tiny", extra=True)
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    packed = pack(model, annotations={"org.example.team": "nlp"}, base=("acme/base", "sha256:" + "a" * 64))
    manifest = json.loads(packed.manifest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == ARTIFACT_TYPE == "application/vnd.cncf.model.manifest.v1+json"
    assert manifest["config"]["mediaType"] == CONFIG_TYPE == "application/vnd.cncf.model.config.v1+json"
    assert manifest["annotations"]["org.example.team"] == "nlp"
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == "acme/base"
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == "sha256:" + "a" * 64

    layers = {layer["annotations"][FILEPATH]: layer for layer in manifest["layers"]}
    assert list(layers) == sorted(tree(model)), "one layer per file, lexicographic, hidden files left out"
    kinds = {path: layer["mediaType"] for path, layer in layers.items()}
    assert kinds == {
        "LICENSE": "application/vnd.cncf.model.doc.v1.raw",
        "README.md": "application/vnd.cncf.model.doc.v1.raw",
        "config.json": "application/vnd.cncf.model.weight.config.v1.raw",
        "data/eval.csv": "application/vnd.cncf.model.dataset.v1.raw",
        "model.safetensors": "application/vnd.cncf.model.weight.v1.raw",
        "src/modeling.py": "application/vnd.cncf.model.code.v1.raw",
        "tokenizer.json": "application/vnd.cncf.model.weight.config.v1.raw",
    }
    assert set(MEDIA_TYPES.values()) == set(kinds.values())
    for path, layer in layers.items():
        assert layer["digest"] == tree(model)[path], "raw layers: the digest is the file's own sha256"
        assert layer["size"] == (model / path).stat().st_size
        metadata = json.loads(layer["annotations"][FILE_METADATA])
        assert set(metadata) == {"name", "mode", "uid", "gid", "size", "mtime", "typeflag"}
        assert metadata["name"] == Path(path).name and metadata["size"] == layer["size"]
        assert metadata["mode"] == (model / path).stat().st_mode & 0o7777
        assert metadata["typeflag"] == ord("0")
        assert metadata["mtime"].endswith("Z")
        assert layer["annotations"][UNTESTED] == "false"
        assert layer["annotations"]["org.opencontainers.image.title"] == path

    config = packed.model_config
    assert config["descriptor"]["family"] == "llama"
    assert config["descriptor"]["licenses"] == ["Apache-2.0"]
    assert config["config"] == {"architecture": "transformer", "format": "safetensors", "paramSize": "20.5K",
                                "precision": "float16"}  # fmt: skip
    assert config["modelfs"] == {"type": "layers", "diffIds": [layer["digest"] for layer in manifest["layers"]]}
    assert json.loads(packed.config) == config

    again = pack(model, annotations={"org.example.team": "nlp"}, base=("acme/base", "sha256:" + "a" * 64))
    assert again.manifest_digest == packed.manifest_digest, "an unchanged directory packs to the same digest"


def test_param_size_format() -> None:
    assert param_size(7_241_732_096) == "7.2B"
    assert param_size(8_000_000_000) == "8B"
    assert param_size(124_439_808) == "124.4M"
    assert param_size(1_000_000_000_000) == "1T"
    assert param_size(20_544) == "20.5K"
    assert param_size(12) is None


def test_directories_that_cannot_be_packed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden").write_text("x")
    with pytest.raises(PackError, match="no files to push"):
        scan(empty)
    with pytest.raises(PackError, match="does not exist"):
        scan(tmp_path / "missing")

    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the model")
    escaping = make_model(tmp_path / "escaping")
    (escaping / "leak.txt").symlink_to(outside)
    with pytest.raises(PackError, match=r"leak.txt is a symlink leading out of"):
        scan(escaping)

    dir_link = make_model(tmp_path / "dirlink")
    (dir_link / "up").symlink_to(tmp_path)
    with pytest.raises(PackError, match="symlink leading out of"):
        scan(dir_link)

    inside = make_model(tmp_path / "inside")
    (inside / "alias.json").symlink_to(inside / "config.json")
    assert "alias.json" in {f.path for f in scan(inside)}, "a symlink within the directory is followed"

    fifo = make_model(tmp_path / "fifo")
    os.mkfifo(fifo / "pipe")
    with pytest.raises(PackError, match="pipe is not a regular file"):
        scan(fifo)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m")
    (model / "config.json").chmod(0)
    with pytest.raises(PackError, match=r"cannot read config\.json"):
        scan(model)


def test_safe_target_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "dest"
    root.mkdir()
    assert safe_target(root, "a/b.json") == root / "a" / "b.json"
    for bad in ("../x", "a/../../x", "/etc/x", "", "C:/x"):
        with pytest.raises(UnsafePathError):
            safe_target(root, bad)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError, match="symlink"):
        safe_target(root, "link/x")


def test_files_of_other_artifact_kinds() -> None:
    digest = "sha256:" + "b" * 64
    kitops = {"layers": [
        {"mediaType": "application/vnd.kitops.modelkit.model.v1.tar+gzip", "digest": digest, "size": 10,
         "annotations": {"org.cncf.model.filepath": "model"}},
    ]}  # fmt: skip
    (kit,) = files_of(kitops)
    assert kit.archive == "tar+gzip" and kit.path == "model"
    docker = {"layers": [
        {"mediaType": "application/vnd.docker.ai.gguf.v3", "digest": digest, "size": 10},
        {"mediaType": "application/vnd.docker.ai.license", "digest": digest, "size": 10},
        {"mediaType": "application/vnd.docker.ai.license", "digest": digest, "size": 10},
        {"mediaType": "application/vnd.docker.ai.gguf.v3", "digest": digest, "size": 10,
         "annotations": {"org.opencontainers.image.title": "q4.gguf"}},
    ]}  # fmt: skip
    assert [f.path for f in files_of(docker)] == ["model.gguf", "LICENSE", "LICENSE-1", "q4.gguf"]
    legacy = {"layers": [{"mediaType": "application/vnd.cnai.model.weight.v1.raw", "digest": digest, "size": 1,
                          "annotations": {"org.cnai.model.filepath": "w.bin"}}]}  # fmt: skip
    assert [f.path for f in files_of(legacy)] == ["w.bin"]
