"""The Hugging Face Hub API with the real ``huggingface_hub`` client (pinned in ``pyproject.toml``;
see the README for the versions tested) against a live registry with authentication on: models
pushed with ``modelyard push``, then ``snapshot_download``, ``hf_hub_download``,
``list_repo_files``, ``model_info`` and ``HfApi.list_repo_tree`` with and without a token, on a
public and a private repository; the client's cache (bytes served are counted on the server: an
unchanged alias downloads nothing, a moved one only the changed files, a rollback nothing);
``allow_patterns``; the default revision; and the errors the client turns into its exceptions."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

import modelyard.api.hf
from tests.hub.support import Hub
from tests.models.support import make_model, tree


def sizes(directory: Path) -> dict[str, int]:
    return {p.relative_to(directory).as_posix(): p.stat().st_size for p in directory.rglob("*") if p.is_file()}


def test_snapshot_download_and_the_client_cache(hub: Hub, tmp_path: Path) -> None:
    """An alias as a revision: the whole model once, nothing the second time, only the changed
    file after the alias moves, nothing after it moves back (a new revision for the client)."""
    model = make_model(tmp_path / "m", extra=True)
    v1 = hub.push(model, "acme/pub:v1")
    hub.move("acme/pub", "prod", v1)
    cache = tmp_path / "cache"

    hub.served.clear()
    first = Path(snapshot_download("acme/pub", revision="prod", endpoint=hub.url, cache_dir=cache, token=False))
    assert tree(first) == tree(model)
    assert first.name == v1.removeprefix("sha256:")[:40]  # the commit: the manifest digest's first 40 hex
    assert hub.served.downloads() == sizes(model)  # every file once, whole

    hub.served.clear()
    again = Path(snapshot_download("acme/pub", revision="prod", endpoint=hub.url, cache_dir=cache, token=False))
    assert again == first and tree(again) == tree(model)
    assert hub.served.requests() == 0  # not even a HEAD: the snapshot is complete

    (model / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 512}))
    v2 = hub.push(model, "acme/pub:v2")
    hub.alias("acme/pub", "prod", "v2")  # the alias API
    hub.served.clear()
    moved = Path(snapshot_download("acme/pub", revision="prod", endpoint=hub.url, cache_dir=cache, token=False))
    assert moved != first and moved.name == v2.removeprefix("sha256:")[:40]
    assert tree(moved) == tree(model)
    assert hub.served.downloads() == {"config.json": (model / "config.json").stat().st_size}

    assert hub.rollback("acme/pub", "prod") == v1  # modelyard rollback: a new revision for the client
    info = hub.api().model_info("acme/pub", revision="prod")
    assert info.sha == first.name
    hub.served.clear()
    back = Path(snapshot_download("acme/pub", revision="prod", endpoint=hub.url, cache_dir=cache, token=False))
    assert back == first and hub.served.downloads() == {}


def test_model_info_files_tree_and_one_file(hub: Hub, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", seed=5, extra=True)
    digest = hub.push(model, "acme/pub:info")
    api = hub.api()
    info = api.model_info("acme/pub", revision="info", files_metadata=True)
    assert info.id == "acme/pub" and info.sha == digest.removeprefix("sha256:")[:40]
    assert info.private is False and info.last_modified is not None
    assert "info" in (info.tags or []) and "safetensors" in (info.tags or [])
    assert info.config is not None and info.config["architectures"] == ["LlamaForCausalLM"]
    expected = tree(model)
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(expected)
    for path, sibling in siblings.items():
        assert sibling.size == (model / path).stat().st_size
        assert sibling.lfs is not None and "sha256:" + sibling.lfs.sha256 == expected[path]
    # the same info by commit hash and by digest
    assert api.model_info("acme/pub", revision=info.sha).sha == info.sha
    assert api.model_info("acme/pub", revision=digest).sha == info.sha

    assert api.list_repo_files("acme/pub", revision="info") == sorted(expected)
    entries = list(api.list_repo_tree("acme/pub", revision="info", recursive=True))
    files = {e.path: e for e in entries if isinstance(e, huggingface_hub.hf_api.RepoFile)}
    folders = {e.path for e in entries if isinstance(e, huggingface_hub.hf_api.RepoFolder)}
    assert set(files) == set(expected) and folders == {"src", "data"}
    for path, entry in files.items():
        assert entry.size == (model / path).stat().st_size
        assert entry.lfs is not None and "sha256:" + entry.lfs.sha256 == expected[path]
        pointer = f"version https://git-lfs.github.com/spec/v1\noid {expected[path]}\nsize {entry.size}\n".encode()
        assert entry.blob_id == hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()  # as git would
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("acme/pub", revision="info")}
    assert top == {"src": "RepoFolder", "data": "RepoFolder", "config.json": "RepoFile",
                   "LICENSE": "RepoFile", "model.safetensors": "RepoFile", "README.md": "RepoFile",
                   "tokenizer.json": "RepoFile"}  # fmt: skip
    sub = [e.path for e in api.list_repo_tree("acme/pub", path_in_repo="src", revision="info")]
    assert sub == ["src/modeling.py"]

    local = hf_hub_download("acme/pub", "src/modeling.py", revision="info", endpoint=hub.url,
                            cache_dir=tmp_path / "cache", token=False)  # fmt: skip
    assert Path(local).read_bytes() == (model / "src" / "modeling.py").read_bytes()

    only = Path(snapshot_download("acme/pub", revision="info", endpoint=hub.url, cache_dir=tmp_path / "c2",
                                  token=False, allow_patterns=["*.json"]))  # fmt: skip
    assert sorted(sizes(only)) == ["config.json", "tokenizer.json"]


def test_resolve_headers_range_and_etag(hub: Hub, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", seed=8)
    digest = hub.push(model, "acme/pub:headers")
    data = (model / "model.safetensors").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    url = f"{hub.url}/acme/pub/resolve/headers/model.safetensors"
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["X-Repo-Commit"] == digest.removeprefix("sha256:")[:40]
    assert head.headers["ETag"] == f'"{sha}"' and head.headers["X-Linked-Etag"] == f'"{sha}"'
    assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(data))
    ranged = httpx.get(url, headers={"Range": "bytes=8-107"})
    assert ranged.status_code == 206 and ranged.content == data[8:108]
    assert ranged.headers["Content-Range"] == f"bytes 8-107/{len(data)}"
    assert httpx.get(url, headers={"If-None-Match": f'"{sha}"'}).status_code == 304
    meta = huggingface_hub.get_hf_file_metadata(url, token=False)
    assert meta.etag == sha and meta.size == len(data) and meta.commit_hash == digest.removeprefix("sha256:")[:40]


def test_default_revision_is_latest_else_the_newest_version(hub: Hub, tmp_path: Path) -> None:
    old = hub.push(make_model(tmp_path / "a", seed=11), "acme/pub-default:v1")
    new = hub.push(make_model(tmp_path / "b", seed=12), "acme/pub-default:v2")
    api = hub.api(hub.reader_key)
    assert api.model_info("acme/pub-default").sha == new.removeprefix("sha256:")[:40]  # "main": the newest
    hub.move("acme/pub-default", "latest", old)
    assert api.model_info("acme/pub-default").sha == old.removeprefix("sha256:")[:40]  # "main": latest
    hub.move("acme/pub-default", "main", new)
    assert api.model_info("acme/pub-default", revision="main").sha == new.removeprefix("sha256:")[:40]


def test_private_repository_with_and_without_a_token(hub: Hub, tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", seed=21)
    hub.push(model, "acme/priv:v1")
    cache = tmp_path / "cache"
    # anonymous: the Hub's answer for a private repository (401, RepoNotFound), as for a missing one
    for repo in ("acme/priv", "acme/missing"):
        with pytest.raises(RepositoryNotFoundError) as anonymous:
            hub.api().model_info(repo, revision="v1")
        assert anonymous.value.response.status_code == 401
        with pytest.raises(RepositoryNotFoundError):
            snapshot_download(repo, revision="v1", endpoint=hub.url, cache_dir=cache, token=False)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(repo, "config.json", revision="v1", endpoint=hub.url, cache_dir=cache, token=False)
    # signed in without access: 404, RepoNotFound, exactly like a missing repository
    for repo in ("acme/priv", "acme/missing"):
        with pytest.raises(RepositoryNotFoundError) as stranger:
            hub.api(hub.stranger_key).list_repo_files(repo, revision="v1")
        assert stranger.value.response.status_code == 404
    # a token that is no credential at all: the client's "invalid credentials", not a missing repository
    with pytest.raises(HfHubHTTPError) as wrong:
        hub.api("myd_not_a_key").model_info("acme/priv", revision="v1")
    assert wrong.value.response.status_code == 401 and not isinstance(wrong.value, RepositoryNotFoundError)

    # the reader's API key as the Hugging Face token
    got = Path(snapshot_download("acme/priv", revision="v1", endpoint=hub.url, cache_dir=cache, token=hub.reader_key))
    assert tree(got) == tree(model)
    info = hub.api(hub.reader_key).model_info("acme/priv", revision="v1")
    assert info.private is True
    assert hub.api(hub.reader_key).list_repo_files("acme/priv", revision="v1") == sorted(tree(model))
    with pytest.raises(RevisionNotFoundError):
        hub.api(hub.reader_key).model_info("acme/priv", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download("acme/priv", revision="v9", endpoint=hub.url, cache_dir=cache, token=hub.reader_key)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("acme/priv", "nope.json", revision="v1", endpoint=hub.url, cache_dir=cache,
                        token=hub.reader_key)  # fmt: skip
    with pytest.raises(EntryNotFoundError):
        list(hub.api(hub.reader_key).list_repo_tree("acme/priv", path_in_repo="nope", revision="v1"))


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/models/acme/pub/revision/%2e%2e", 404, "RevisionNotFound"),
        ("/api/models/acme/pub/revision/sha256:zz", 404, "RevisionNotFound"),
        ("/api/models/acme/pub/revision/" + "a" * 300, 404, "RevisionNotFound"),
        ("/api/models/acme/pub/revision/%00", 404, "RevisionNotFound"),
        ("/api/models/Acme/Pub", 401, "RepoNotFound"),  # names are lowercase; anonymous: 401
        ("/api/models/acme/pub/tree/v1/%2e%2e/%2e%2e/etc", 404, "EntryNotFound"),
        ("/api/models/acme/pub/tree/v1/config.json", 404, "EntryNotFound"),  # a file, not a directory
        ("/acme/pub/resolve/v1/%2e%2e%2f%2e%2e%2fetc/passwd", 404, "EntryNotFound"),
        ("/acme/pub/resolve/v1/%2e%2e/secret", 404, "EntryNotFound"),
        ("/acme/pub/resolve/nope/config.json", 404, "RevisionNotFound"),
    ],
)
def test_bad_input_is_a_hub_error_never_a_500(hub: Hub, tmp_path: Path, path: str, status: int, code: str) -> None:
    hub.push(make_model(tmp_path / "m", seed=2), "acme/pub:v1")
    response = httpx.get(hub.url + path)
    assert (response.status_code, response.headers.get("X-Error-Code")) == (status, code), response.text
    assert response.json()["errors"][0]["message"]


def test_tree_pages_follow_the_link_header(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree of more entries than a page (pages made small here; 1,000 in service): the client
    follows ``Link: rel="next"`` to the end."""
    monkeypatch.setattr(modelyard.api.hf, "TREE_PAGE", 3)
    model = tmp_path / "many"
    (model / "shards").mkdir(parents=True)
    for index in range(10):
        (model / "shards" / f"part-{index:02}.json").write_text(str(index))
    hub.push(model, "acme/pub:many")
    first = httpx.get(f"{hub.url}/api/models/acme/pub/tree/many/shards")
    assert first.status_code == 200 and len(first.json()) == 3 and 'rel="next"' in first.headers["Link"]
    last = httpx.get(f"{hub.url}/api/models/acme/pub/tree/many/shards", params={"cursor": "9"})
    assert len(last.json()) == 1 and "Link" not in last.headers
    assert httpx.get(f"{hub.url}/api/models/acme/pub/tree/many/shards", params={"cursor": "x"}).status_code == 200
    files = hub.api().list_repo_files("acme/pub", revision="many")
    assert files == [f"shards/part-{index:02}.json" for index in range(10)]


def test_safetensors_metadata_through_range_reads(hub: Hub, tmp_path: Path) -> None:
    """``get_safetensors_metadata`` reads only the header with ``Range`` requests on ``resolve``."""
    model = make_model(tmp_path / "m", seed=13, rows=1024)  # 650 KiB: larger than the client's first read
    hub.push(model, "acme/pub:st")
    hub.served.clear()
    metadata = hub.api().get_safetensors_metadata("acme/pub", revision="st")
    tensors = metadata.files_metadata["model.safetensors"].tensors
    assert tensors["model.embed_tokens.weight"].shape == [1024, 256] and tensors["lm_head.bias"].dtype == "F16"
    sent = sum(size for method, _, status, size in hub.served.responses if method == "GET" and status == 206)
    assert 0 < sent < (model / "model.safetensors").stat().st_size  # the header, not the weights


def test_files_inside_tar_layers_kitops(hub: Hub, tmp_path: Path) -> None:
    """A KitOps ModelKit (an uncompressed and a gzip tar layer): files are identified inside the
    tars, served from the members, and cached by the client under stable ETags."""
    weights = b"GGUF" + bytes(range(256)) * 40
    docs = b"# kit\n"
    layers = []
    for media_type, files, compress in (
        ("application/vnd.kitops.modelkit.model.v1.tar+gzip", {"models/model.gguf": weights}, True),
        ("application/vnd.kitops.modelkit.docs.v1.tar", {"README.md": docs}, False),
    ):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        raw = buffer.getvalue()
        layers.append((media_type, gzip.compress(raw, mtime=0) if compress else raw))
    hub.push_layers("acme/pub", "kit", layers)

    cache = tmp_path / "cache"
    hub.served.clear()
    got = Path(snapshot_download("acme/pub", revision="kit", endpoint=hub.url, cache_dir=cache, token=False))
    assert (got / "models" / "model.gguf").read_bytes() == weights and (got / "README.md").read_bytes() == docs
    assert set(hub.served.downloads()) == {"models/model.gguf", "README.md"}
    entries = {e.path: e for e in hub.api().list_repo_tree("acme/pub", revision="kit", recursive=True)}
    assert isinstance(entries["README.md"], huggingface_hub.hf_api.RepoFile) and entries["README.md"].lfs is None
    hub.served.clear()
    assert Path(snapshot_download("acme/pub", revision="kit", endpoint=hub.url, cache_dir=cache, token=False)) == got
    assert hub.served.requests() == 0
    ranged = httpx.get(f"{hub.url}/acme/pub/resolve/kit/models/model.gguf", headers={"Range": "bytes=4-9"})
    assert ranged.status_code == 206 and ranged.content == weights[4:10]


def test_the_hf_command_line_downloads_an_alias(hub: Hub, tmp_path: Path) -> None:
    """``hf download`` (the client's CLI) with ``HF_ENDPOINT`` and ``HF_TOKEN`` set, as a user would."""
    model = make_model(tmp_path / "m", seed=17)
    hub.push(model, "acme/priv:cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN=hub.reader_key, HF_HOME=str(tmp_path / "home"),
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")  # fmt: skip
    hf = Path(sys.executable).with_name("hf")
    done = subprocess.run([str(hf), "download", "acme/priv", "--revision", "cli", "--local-dir", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert tree(tmp_path / "out") == tree(model)


def test_refs_paths_info_and_existence_checks(hub: Hub, tmp_path: Path) -> None:
    """``list_repo_refs`` lists the repository's tags (aliases and versions) and ``main``;
    ``get_paths_info``, ``file_exists`` and ``revision_exists`` answer from the same version."""
    hub.create("acme/refs-pub", public=True)
    model = make_model(tmp_path / "m", seed=61, extra=True)
    v1 = hub.push(model, "acme/refs-pub:v1")
    hub.move("acme/refs-pub", "prod", v1)
    v2 = hub.push(make_model(tmp_path / "n", seed=62), "acme/refs-pub:v2")
    api = hub.api()
    refs = api.list_repo_refs("acme/refs-pub")
    commit = {digest: digest.removeprefix("sha256:")[:40] for digest in (v1, v2)}
    assert {(t.name, t.target_commit) for t in refs.tags} == {("v1", commit[v1]), ("prod", commit[v1]),
                                                             ("v2", commit[v2])}  # fmt: skip
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", commit[v2])]  # no latest: the newest

    infos = api.get_paths_info("acme/refs-pub", ["config.json", "src", "nope", "data/eval.csv"], revision="prod")
    assert [(type(i).__name__, i.path) for i in infos] == [
        ("RepoFile", "config.json"), ("RepoFolder", "src"), ("RepoFile", "data/eval.csv")]  # fmt: skip
    assert api.file_exists("acme/refs-pub", "src/modeling.py", revision="prod")
    assert not api.file_exists("acme/refs-pub", "src/modeling.py", revision="v2")
    assert api.revision_exists("acme/refs-pub", "prod") and not api.revision_exists("acme/refs-pub", "v9")
    assert api.repo_exists("acme/refs-pub") and not api.repo_exists("acme/priv")  # private: not for anonymous
