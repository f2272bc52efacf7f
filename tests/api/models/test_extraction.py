"""Model metadata extraction on manifest PUT, per packaging and per file format, through ``/v2``
pushes and the admin API: ModelPack (and the older cnai names) with safetensors, GGUF and a
Hugging Face ``config.json``; Docker model artifacts; KitOps ModelKits with tar layers; plain
images; and hostile input that must leave the push successful and the version opaque, fast."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.models.builders import (
    APACHE,
    CONFIG_RAW,
    DOC_RAW,
    HF_CONFIG,
    README,
    WEIGHT_RAW,
    Layer,
    gguf_file,
    hostile_safetensors,
    llama_safetensors,
    modelpack_config,
    push_model,
    raw_file,
    safetensors_file,
    tar_of,
)
from tests.helpers import push_image, sha256

Client = TestClient[Any, Any]


async def version(client: Client, repo: str, ref: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/repositories/{repo}/-/versions/{ref}")
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_modelpack_with_safetensors_config_json_and_readme(client: Client) -> None:
    config = modelpack_config(architecture="transformer", format="safetensors")
    layers = [
        raw_file(WEIGHT_RAW, "model.safetensors", llama_safetensors()),
        raw_file(CONFIG_RAW, "config.json", json.dumps(HF_CONFIG).encode()),
        raw_file(DOC_RAW, "README.md", README),
        raw_file(DOC_RAW, "LICENSE", APACHE),
    ]
    digest = await push_model(client, "acme/tiny", "v1", config, layers)

    found = await version(client, "acme/tiny", "v1")
    assert found["digest"] == digest and found["tags"] == ["v1"]
    assert found["packaging"] == "modelpack" and found["status"] == "indexed", found
    assert found["format"] == "safetensors"
    assert found["architecture"] == "llama"  # config.json's model_type beats the generic "transformer"
    assert found["parameters"] == 64 * 32 + 32 * 64 + 64
    assert found["parameters_human"] == "4.2K"
    assert found["precision"] == "float16"  # the weights' dtype, over config.json's torch_dtype
    assert found["license"] == "apache-2.0"
    assert found["context_length"] == 8192
    assert found["quantization"] is None
    assert found["total_size"] == sum(len(layer.data) for layer in layers)
    assert found["file_count"] == 4
    assert found["card"].startswith("# Tiny Llama\n\nA tiny test model.")
    assert found["details"]["declared"]["architecture"] == "transformer"
    assert found["details"]["family"] == "llama3"
    files = {f["path"]: f for f in found["files"]}
    assert set(files) == {"model.safetensors", "config.json", "README.md", "LICENSE"}
    assert files["model.safetensors"] == {
        "path": "model.safetensors", "size": len(layers[0].data), "digest": sha256(layers[0].data),
        "media_type": WEIGHT_RAW, "kind": "weight", "archive": "raw", "layer_index": 0,
    }  # fmt: skip
    assert files["config.json"]["kind"] == "config" and files["README.md"]["kind"] == "doc"

    by_digest = await version(client, "acme/tiny", digest)
    assert by_digest["parameters"] == found["parameters"]
    listed = await (await client.get("/api/v1/repositories/acme/tiny/-/versions/v1/files")).json()
    assert [f["path"] for f in listed["items"]] == [f["path"] for f in found["files"]]

    versions = await (await client.get("/api/v1/repositories/acme/tiny/-/versions")).json()
    model = versions["items"][0]["model"]
    assert model["format"] == "safetensors" and model["architecture"] == "llama"
    assert model["parameters_human"] == "4.2K" and model["precision"] == "float16"
    assert model["license"] == "apache-2.0" and model["total_size"] == found["total_size"]
    assert model["file_count"] == 4


async def test_sharded_safetensors_are_summed_and_gptq_packing_is_counted(client: Client) -> None:
    shard = safetensors_file({"a.weight": ((100, 10), "float32")})
    quantized = safetensors_file(
        {
            "layers.0.qweight": ((16, 64), "int32"),  # 4-bit: 8 values per int32
            "layers.0.qzeros": ((1, 8), "int32"),
            "layers.0.scales": ((1, 64), "float16"),
            "norm.weight": ((64,), "float16"),
        }
    )
    hf = {**HF_CONFIG, "quantization_config": {"quant_method": "gptq", "bits": 4}}
    await push_model(
        client,
        "acme/gptq",
        "v1",
        modelpack_config(),
        [
            raw_file(WEIGHT_RAW, "model-00001-of-00002.safetensors", shard),
            raw_file(WEIGHT_RAW, "model-00002-of-00002.safetensors", quantized),
            raw_file(CONFIG_RAW, "config.json", json.dumps(hf).encode()),
        ],
    )
    found = await version(client, "acme/gptq", "v1")
    assert found["parameters"] == 1000 + 16 * 64 * 8 + 64
    assert found["quantization"] == "gptq" and found["quant_bits"] == 4


async def test_legacy_cnai_modelpack_declares_what_it_has(client: Client) -> None:
    config = modelpack_config(
        architecture="transformer", format="pt", paramSize="6.7b", precision="float16", quantization="awq",
        descriptor={"name": "old", "licenses": ["MIT"]},
    )  # fmt: skip
    await push_model(
        client,
        "acme/legacy",
        "v1",
        config,
        [Layer("application/vnd.cnai.model.weight.v1.raw", b"weights", {"org.cnai.model.filepath": "model.pt"})],
        config_type="application/vnd.cnai.model.config.v1+json",
        artifact_type="application/vnd.cnai.model.manifest.v1+json",
    )
    found = await version(client, "acme/legacy", "v1")
    assert found["packaging"] == "modelpack-cnai" and found["status"] == "indexed"
    assert found["parameters"] == 6_700_000_000 and found["parameters_human"] == "6.7B"
    assert (found["format"], found["precision"], found["quantization"]) == ("pt", "float16", "awq")
    assert found["license"] == "mit" and found["architecture"] == "transformer"
    assert [f["path"] for f in found["files"]] == ["model.pt"]


async def test_gguf_header_gives_architecture_quantization_and_context(client: Client, tmp_path: Path) -> None:
    data = gguf_file(tmp_path / "tiny.gguf")
    await push_model(client, "acme/gguf", "q4", modelpack_config(), [raw_file(WEIGHT_RAW, "tiny.gguf", data)])
    found = await version(client, "acme/gguf", "q4")
    assert found["status"] == "indexed", found
    assert found["format"] == "gguf"
    assert found["architecture"] == "llama"
    assert found["parameters"] == 32 * 64 + 16 * 64
    assert found["quantization"] == "q4_k_m" and found["quant_bits"] == 4
    assert found["context_length"] == 4096
    assert found["license"] == "apache-2.0"  # declared by the ModelPack config, over the GGUF's "mit"
    assert found["details"]["gguf"]["general.name"] == "tiny-gguf"


async def test_docker_model_artifact(client: Client, tmp_path: Path) -> None:
    data = gguf_file(tmp_path / "m.gguf", quantized=False)
    config = json.dumps(
        {
            "config": {"format": "gguf", "quantization": "F16", "parameters": "3.07 K", "architecture": "llama",
                       "size": str(len(data))},
            "descriptor": {"created": "2025-01-01T00:00:00Z"},
            "files": [{"diffID": sha256(data), "type": "application/vnd.docker.ai.gguf.v3"}],
        }
    ).encode()  # fmt: skip
    await push_model(
        client,
        "ai/smollm",
        "latest",
        config,
        [Layer("application/vnd.docker.ai.gguf.v3", data), Layer("application/vnd.docker.ai.license", APACHE)],
        config_type="application/vnd.docker.ai.model.config.v0.1+json",
        artifact_type=None,
    )
    found = await version(client, "ai/smollm", "latest")
    assert found["packaging"] == "docker-model" and found["status"] == "indexed", found
    assert found["format"] == "gguf" and found["architecture"] == "llama"
    assert found["parameters"] == 3072  # counted from the GGUF header
    assert found["precision"] == "float16" and found["quantization"] == "f16"
    assert found["license"] == "mit"  # the GGUF's general.license (LICENSE is read after it)
    assert {f["path"]: f["kind"] for f in found["files"]} == {"model-0.gguf": "weight", "LICENSE": "doc"}


async def test_kitops_modelkit_with_tar_layers(client: Client) -> None:
    weights = llama_safetensors()
    kitfile = json.dumps(
        {
            "manifestVersion": "1.0",
            "package": {"name": "tiny-kit", "license": "Apache-2.0", "version": "1.0.0"},
            "model": {"name": "tiny", "path": "model", "framework": "safetensors"},
        }
    ).encode()
    model_tar = tar_of({"model/model.safetensors": weights, "model/config.json": json.dumps(HF_CONFIG).encode()},
                       gzip=True)  # fmt: skip
    docs_tar = tar_of({"README.md": README})
    await push_model(
        client,
        "kit/tiny",
        "v1",
        kitfile,
        [
            Layer("application/vnd.kitops.modelkit.model.v1.tar+gzip", model_tar),
            Layer("application/vnd.kitops.modelkit.docs.v1.tar", docs_tar),
        ],
        config_type="application/vnd.kitops.modelkit.config.v1+json",
        artifact_type=None,
    )
    found = await version(client, "kit/tiny", "v1")
    assert found["packaging"] == "kitops" and found["status"] == "indexed", found
    assert found["name"] == "tiny" and found["format"] == "safetensors" and found["license"] == "apache-2.0"
    assert found["parameters"] == 64 * 32 + 32 * 64 + 64  # from the header captured while decompressing
    assert found["architecture"] == "llama" and found["context_length"] == 8192
    assert found["card"].startswith("# Tiny Llama")
    files = {f["path"]: f for f in found["files"]}
    assert set(files) == {"model/model.safetensors", "model/config.json", "README.md"}
    assert files["model/model.safetensors"]["archive"] == "tar+gzip"
    assert files["README.md"]["archive"] == "tar" and files["README.md"]["kind"] == "doc"
    assert files["model/model.safetensors"]["size"] == len(weights)


async def test_plain_image_reads_labels_and_annotations(client: Client) -> None:
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"org.opencontainers.image.title": "server"}}}
    ).encode()
    await push_image(
        client, "acme/server", "1.0", config=config, annotations={"org.opencontainers.image.licenses": "BSD-3-Clause"}
    )
    found = await version(client, "acme/server", "1.0")
    assert found["packaging"] == "image" and found["status"] == "indexed"
    assert found["name"] == "server" and found["license"] == "bsd-3-clause"
    assert found["files"] == [] and found["format"] is None


async def test_oras_style_artifact_files_are_read_by_name(client: Client) -> None:
    weights = llama_safetensors()
    empty = b"{}"
    oras = "application/vnd.oci.image.layer.v1.tar"  # what oras labels a plain file
    title = "org.opencontainers.image.title"
    layers = [
        Layer(oras, weights, {title: "model.safetensors"}),
        Layer(oras, json.dumps(HF_CONFIG).encode(), {title: "config.json"}),
    ]
    await push_model(
        client, "acme/oras", "v1", empty, layers, config_type="application/vnd.oci.empty.v1+json", artifact_type=None
    )
    found = await version(client, "acme/oras", "v1")
    assert found["packaging"] == "artifact" and found["format"] == "safetensors"
    assert found["parameters"] == 4160 and found["architecture"] == "llama"
    assert all(f["archive"] == "raw" for f in found["files"])


# -- hostile and broken input: the push succeeds, the version is opaque with a reason ----------


async def _opaque(client: Client, repo: str, config: bytes, layers: list[Layer], **kwargs: Any) -> dict[str, Any]:
    started = time.monotonic()
    await push_model(client, repo, "v1", config, layers, **kwargs)
    assert time.monotonic() - started < 10, "extraction must be bounded in time"
    found = await version(client, repo, "v1")
    assert found["status"] == "opaque", found
    assert found["files"], "the files are listed all the same"
    return found


async def test_safetensors_header_claiming_10_gb_is_not_read(client: Client) -> None:
    found = await _opaque(
        client,
        "bad/huge-header",
        modelpack_config(paramSize="7b"),
        [raw_file(WEIGHT_RAW, "model.safetensors", hostile_safetensors(10_000_000_000))],
    )
    assert "10000000000" in found["reason"] and "limit" in found["reason"], found["reason"]
    assert found["reason"].startswith("model.safetensors: ")
    assert found["parameters"] == 7_000_000_000  # the declared value stays


async def test_safetensors_header_that_is_not_json(client: Client) -> None:
    data = struct.pack("<Q", 10) + b"not json!!" + b"\0" * 16
    found = await _opaque(client, "bad/st-json", modelpack_config(), [raw_file(WEIGHT_RAW, "m.safetensors", data)])
    assert "not valid JSON" in found["reason"]


async def test_gguf_with_absurd_counts(client: Client) -> None:
    tensors = struct.pack("<4sIQQ", b"GGUF", 3, 2**60, 1)
    found = await _opaque(client, "bad/gguf", modelpack_config(), [raw_file(WEIGHT_RAW, "m.gguf", tensors)])
    assert "1152921504606846976 tensors" in found["reason"]
    kv = struct.pack("<4sIQQ", b"GGUF", 3, 1, 1) + struct.pack("<Q", 5) + b"a.key" + struct.pack("<IIQ", 9, 4, 2**62)
    found = await _opaque(client, "bad/gguf-array", modelpack_config(), [raw_file(WEIGHT_RAW, "m.gguf", kv)])
    assert "claims 4611686018427387904 items" in found["reason"]
    truncated = struct.pack("<4sIQQ", b"GGUF", 3, 0, 3)
    found = await _opaque(client, "bad/gguf-short", modelpack_config(), [raw_file(WEIGHT_RAW, "m.gguf", truncated)])
    assert "ends early" in found["reason"]


async def test_malformed_config_json(client: Client) -> None:
    found = await _opaque(
        client, "bad/config", b"{not json", [raw_file(WEIGHT_RAW, "model.safetensors", llama_safetensors())]
    )
    assert found["reason"].startswith("config is not valid JSON: "), found["reason"]
    assert found["packaging"] == "modelpack" and found["parameters"] is None


async def test_malformed_hf_config_json(client: Client) -> None:
    found = await _opaque(
        client, "bad/hf", modelpack_config(), [raw_file(CONFIG_RAW, "config.json", b'{"model_type": ')]
    )
    assert found["reason"].startswith("config.json: config.json is not valid JSON")


async def test_a_tar_layer_that_is_not_a_tar_is_listed_whole(client: Client) -> None:
    layer = Layer("application/vnd.cncf.model.weight.v1.tar", b"\x00" * 100 + b"garbage", {})
    await push_model(client, "bad/tar", "v1", modelpack_config(), [layer])
    found = await version(client, "bad/tar", "v1")
    assert found["status"] == "indexed" and found["file_count"] == 1
    assert "not a readable tar" in " ".join(found["details"]["notes"])


async def test_unknown_version_and_index_manifests(client: Client) -> None:
    await push_image(client, "acme/img", "v1")
    missing = await client.get("/api/v1/repositories/acme/img/-/versions/nope")
    assert missing.status == 404 and (await missing.json())["errors"][0]["code"] == "NOT_FOUND"
    no_repo = await client.get("/api/v1/repositories/acme/none/-/versions/v1")
    assert no_repo.status == 404
    bad_digest = await client.get("/api/v1/repositories/acme/img/-/versions/sha256:" + "0" * 64)
    assert bad_digest.status == 404
