"""The tensor index of safetensors files against a real registry (in-process live server, auth
off): a model pushed with ``modelyard push`` lists every tensor of its safetensors files with
dtype, shape and absolute byte range, and every tensor comes back byte-identical through
``…/tensors/{name}``, for a raw layer and for a member of a tar layer; refusals are 404s."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.client.oci import OciClient, sha256_digest
from tests.cli.liveserver import LiveServer, live_server

DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("MODELYARD_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("MODELYARD_API_KEY", raising=False)
    with live_server(data_dir=tmp_path / "registry") as running:
        yield running


def weights() -> dict[str, np.ndarray]:
    """Tensors of several dtypes and ranks, a scalar and an empty one included."""
    rng = np.random.default_rng(3)
    return {
        "model.embed_tokens.weight": rng.standard_normal((32, 16)).astype(np.float16),
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((16, 16)).astype(np.float32),
        "model.layers.0.mlp.gate.bias": rng.integers(-100, 100, 7).astype(np.int8),
        "position_ids": np.arange(11, dtype=np.int64),
        "mask": rng.integers(0, 2, (3, 5)).astype(np.bool_),
        "scale": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.uint8),
    }


def push(server: LiveServer, directory: Path, reference: str) -> str:
    result = CliRunner().invoke(app, ["push", str(directory), reference, "--json", "--registry", server.url])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["digest"])


def base(server: LiveServer, repository: str, reference: str, path: str) -> str:
    return f"{server.url}/api/v1/repositories/{repository}/-/versions/{reference}/files/{quote(path)}"


def check_every_tensor(server: LiveServer, repository: str, reference: str, path: str, file: Path) -> None:
    expected = load_file(str(file))
    data = file.read_bytes()
    listing = httpx.get(base(server, repository, reference, path) + "/tensors")
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["path"] == path
    items = {item["name"]: item for item in body["items"]}
    assert set(items) == set(expected)
    starts = [item["start"] for item in body["items"]]
    assert starts == sorted(starts)  # file order
    for name, array in expected.items():
        item = items[name]
        assert list(array.shape) == item["shape"]
        assert DTYPES[item["dtype"]] == array.dtype.type
        assert item["end"] - item["start"] == array.nbytes
        assert data[item["start"] : item["end"]] == array.tobytes()  # absolute offsets in the file
        one = httpx.get(base(server, repository, reference, path) + "/tensors/" + quote(name, safe=""))
        assert one.status_code == 200, one.text
        assert one.content == array.tobytes()
        assert one.headers["X-Tensor-Dtype"] == item["dtype"]
        assert one.headers["X-Tensor-Shape"] == ",".join(str(d) for d in array.shape)
        assert int(one.headers["Content-Length"]) == array.nbytes
        restored = np.frombuffer(one.content, dtype=array.dtype).reshape(array.shape)
        assert np.array_equal(restored, array)


def test_every_tensor_of_a_pushed_model_comes_back_byte_identical(server: LiveServer, tmp_path: Path) -> None:
    model = tmp_path / "m"
    (model / "shards").mkdir(parents=True)
    save_file(weights(), str(model / "model.safetensors"), metadata={"format": "np"})
    rng = np.random.default_rng(9)
    save_file(
        {"lm_head.weight": rng.standard_normal((8, 16)).astype(np.float32)}, str(model / "shards" / "b.safetensors")
    )
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    push(server, model, "acme/tensors:v1")

    check_every_tensor(server, "acme/tensors", "v1", "model.safetensors", model / "model.safetensors")
    check_every_tensor(server, "acme/tensors", "v1", "shards/b.safetensors", model / "shards" / "b.safetensors")

    # refusals: a missing tensor, a file that is not safetensors, a missing file or version
    url = base(server, "acme/tensors", "v1", "model.safetensors")
    assert httpx.get(url + "/tensors/nope").status_code == 404
    assert httpx.get(base(server, "acme/tensors", "v1", "config.json") + "/tensors").status_code == 404
    assert httpx.get(base(server, "acme/tensors", "v1", "x.safetensors") + "/tensors").status_code == 404
    assert httpx.get(base(server, "acme/tensors", "v9", "model.safetensors") + "/tensors").status_code == 404
    missing = httpx.get(url.replace("acme/tensors", "acme/none") + "/tensors")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"


def test_tensors_of_a_safetensors_file_inside_a_tar_layer(server: LiveServer, tmp_path: Path) -> None:
    """A ModelKit-style layer (an uncompressed tar of a directory): the ranges are still absolute
    in the file, and the bytes come from a ranged read of the layer at the member's offset."""
    file = tmp_path / "model.safetensors"
    save_file(weights(), str(file))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(file, arcname="weights/model.safetensors")
    layer = buffer.getvalue()
    config = b"{}"
    with OciClient(server.url) as oci:
        oci.upload_bytes("acme/kit", config)
        oci.upload_bytes("acme/kit", layer)
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(config),
                               "size": len(config)},
                    "layers": [{"mediaType": "application/vnd.kitops.modelkit.model.v1.tar", "digest":
                                sha256_digest(layer), "size": len(layer)}]}  # fmt: skip
        oci.put_manifest("acme/kit", "v1", json.dumps(manifest).encode())
    check_every_tensor(server, "acme/kit", "v1", "weights/model.safetensors", file)
