"""oras-py (the library; there is no CLI) pushes, pulls, attaches, discovers, lists and deletes artifacts.

oras-py has no ``artifactType`` argument: like ORAS 1.0 it types an artifact by its config's
media type (``manifest_config="<file>:<type>"``), which the spec's referrers API reports as the
``artifactType`` when the manifest has none. oras-py retries every HTTP 500 and connection
error for about two minutes, so each call that is expected to fail runs under a timeout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import oras.client
import oras.oci
import pytest

from tests.backends import served_backend  # noqa: F401  (SQLite+files and PostgreSQL+S3)
from tests.helpers import bounded
from tests.interop.conftest import ServerFactory
from tests.interop.layouts import OCI_INDEX, sha256
from tests.interop.serverproc import ServerProcess

pytestmark = pytest.mark.interop


@pytest.fixture
def server(server_factory: ServerFactory, served_backend: str) -> ServerProcess:  # noqa: F811
    """The interop conftest's server, on each backend of ``tests/backends.py`` in turn."""
    return server_factory()


T = TypeVar("T")
MODEL_TYPE = "application/vnd.acme.model.config.v1+json"
CARD_TYPE = "application/vnd.acme.model-card.v1+json"
SIGNATURE_TYPE = "application/vnd.acme.signature.v1+json"
WEIGHTS_LAYER = "application/vnd.acme.model.weights.v1.tar"
NEGATIVE_TIMEOUT = 20.0


def bounded_oras(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """An oras call that should fail fast; a hang (oras retrying 500s) fails the test instead."""
    return bounded(fn, *args, timeout=NEGATIVE_TIMEOUT, **kwargs)


@pytest.fixture
def oras_client(server: ServerProcess) -> Any:
    return oras.client.OrasClient(hostname=server.host, insecure=True)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """oras-py only pushes files below the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return path.name


def referrers(server: ServerProcess, repository: str, digest: str, artifact_type: str | None = None) -> httpx.Response:
    params = {"artifactType": artifact_type} if artifact_type else None
    response = httpx.get(f"{server.url}/v2/{repository}/referrers/{digest}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(OCI_INDEX)
    return response


def test_push_pull_attach_discover_tags_delete(
    server: ServerProcess, oras_client: Any, workdir: Path, tmp_path: Path
) -> None:
    repo = f"{server.host}/acme/model"
    weights = os.urandom(3 * 1024 * 1024 + 123)
    config = json.dumps({"framework": "pytorch", "parameters": "7b"}).encode()
    write(workdir / "model-config.json", config)
    files = [f"{write(workdir / 'weights.bin', weights)}:{WEIGHTS_LAYER}"]

    # Chunked push (POST, PATCH with Content-Range per 1 MiB, PUT ?digest=).
    pushed = oras_client.push(
        target=f"{repo}:v1",
        files=files,
        manifest_config=f"model-config.json:{MODEL_TYPE}",
        manifest_annotations={"org.opencontainers.image.description": "a model"},
        do_chunked=True,
        chunk_size=1024 * 1024,
        quiet=True,
    )
    assert pushed.status_code == 201
    model_digest = pushed.headers["Docker-Content-Digest"]

    manifest = oras_client.get_manifest(f"{repo}:v1")
    assert manifest["config"] == {"mediaType": MODEL_TYPE, "digest": sha256(config), "size": len(config)}
    [layer] = manifest["layers"]
    assert (layer["mediaType"], layer["digest"], layer["size"]) == (WEIGHTS_LAYER, sha256(weights), len(weights))

    pulled = oras_client.pull(target=f"{repo}:v1", outdir=str(tmp_path / "pulled"))
    assert [Path(p).name for p in pulled] == ["weights.bin"]
    assert Path(pulled[0]).read_bytes() == weights

    # Attach a model card and a signature to v1 (the subject); oras-py computes the subject
    # descriptor from the manifest JSON it fetched, which must be the digest we stored.
    subject = oras.oci.Subject.from_manifest(manifest)
    assert subject.digest == model_digest
    card = b"# Model card\n\nTrained on synthetic data.\n"
    write(workdir / "card-config.json", b"{}")
    attached = {}
    for tag, artifact_type, payload in (("card", CARD_TYPE, card), ("sig", SIGNATURE_TYPE, os.urandom(64))):
        name = write(workdir / f"{tag}.dat", payload)
        response = oras_client.push(
            target=f"{repo}:{tag}",
            files=[name],
            manifest_config=f"card-config.json:{artifact_type}",
            manifest_annotations={"org.example.kind": tag},
            subject=subject,
            quiet=True,
        )
        assert response.status_code == 201
        assert response.headers["OCI-Subject"] == model_digest
        attached[tag] = response.headers["Docker-Content-Digest"]

    everything = referrers(server, "acme/model", model_digest).json()
    assert everything["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in everything["manifests"]}
    assert set(by_digest) == set(attached.values())
    assert by_digest[attached["card"]]["artifactType"] == CARD_TYPE
    assert by_digest[attached["card"]]["annotations"] == {"org.example.kind": "card"}
    assert by_digest[attached["sig"]]["artifactType"] == SIGNATURE_TYPE

    filtered = referrers(server, "acme/model", model_digest, CARD_TYPE)
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [attached["card"]]
    assert referrers(server, "acme/model", model_digest, "application/x-none").json()["manifests"] == []

    card_pull = oras_client.pull(target=f"{repo}:card", outdir=str(tmp_path / "card"))
    assert Path(card_pull[0]).read_bytes() == card

    assert sorted(oras_client.get_tags(f"{repo}:v1")) == ["card", "sig", "v1"]
    assert oras_client.get_tags(f"{repo}:v1", N=2) == ["card", "sig"]

    # delete_tag resolves the tag (HEAD) and deletes that manifest by digest (202).
    assert oras_client.delete_tag(repo, "card") is True
    assert sorted(oras_client.get_tags(f"{repo}:v1")) == ["sig", "v1"]
    assert [d["digest"] for d in referrers(server, "acme/model", model_digest).json()["manifests"]] == [attached["sig"]]
    # Deleting it again: HEAD is 404, which oras-py reports as False (no retry loop).
    assert bounded_oras(oras_client.delete_tag, repo, "card") is False
    # The model itself is untouched and still pulls byte-exact.
    again = oras_client.pull(target=f"{repo}@{model_digest}", outdir=str(tmp_path / "again"))
    assert Path(again[0]).read_bytes() == weights


def test_monolithic_push_and_unknown_references_fail_fast(
    server: ServerProcess, oras_client: Any, workdir: Path, tmp_path: Path
) -> None:
    repo = f"{server.host}/acme/tiny"
    data = os.urandom(1000)
    name = write(workdir / "tiny.bin", data)
    response = oras_client.push(target=f"{repo}:latest", files=[name], quiet=True)
    assert response.status_code == 201
    # No config given: oras-py pushes the empty "{}" config with its unknown-config type.
    manifest = oras_client.get_manifest(f"{repo}:latest")
    assert manifest["config"]["digest"] == sha256(b"{}")
    assert Path(oras_client.pull(target=f"{repo}:latest", outdir=str(tmp_path / "out"))[0]).read_bytes() == data

    with pytest.raises(ValueError, match="manifests/nope"):
        bounded_oras(oras_client.get_manifest, f"{repo}:nope")
    with pytest.raises(ValueError, match="tags/list"):
        bounded_oras(oras_client.get_tags, f"{server.host}/acme/never-pushed:latest")
