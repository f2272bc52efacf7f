"""Small, real test models and the manifests that carry them (no mocks: the files are written by
the ``safetensors`` and ``gguf`` packages, the manifests are ModelPack, Docker model and KitOps
as those tools write them)."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient
from safetensors.numpy import save

from tests.helpers import OCI_MANIFEST, descriptor, push_blob

MODELPACK_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODELPACK_MANIFEST = "application/vnd.cncf.model.manifest.v1+json"
WEIGHT_RAW = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_TAR = "application/vnd.cncf.model.weight.v1.tar"
CONFIG_RAW = "application/vnd.cncf.model.weight.config.v1.raw"
DOC_RAW = "application/vnd.cncf.model.doc.v1.raw"
DOC_TAR_GZIP = "application/vnd.cncf.model.doc.v1.tar+gzip"
FILEPATH = "org.cncf.model.filepath"

HF_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
    "hidden_size": 64,
    "num_hidden_layers": 2,
}
README = b"---\nlicense: apache-2.0\nlanguage: en\n---\n# Tiny Llama\n\nA tiny test model.\nLine three.\n"
APACHE = b"                                 Apache License\n                           Version 2.0, January 2004\n"


def safetensors_file(shapes: dict[str, tuple[tuple[int, ...], str]], metadata: dict[str, str] | None = None) -> bytes:
    """A real safetensors file: ``{name: (shape, numpy dtype)}``."""
    tensors = {name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in shapes.items()}
    return save(tensors, metadata=metadata)


def llama_safetensors() -> bytes:
    """64x32 + 32x64 + 64 float16 values = 4160 parameters."""
    return safetensors_file(
        {
            "model.embed_tokens.weight": ((64, 32), "float16"),
            "lm_head.weight": ((32, 64), "float16"),
            "model.norm.weight": ((64,), "float16"),
        }
    )


def gguf_file(path: Path, *, quantized: bool = True) -> bytes:
    """A real GGUF file (llama, 4096 context, file type Q4_K_M, 3072 parameters)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-gguf")
    writer.add_context_length(4096)
    writer.add_license("mit")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M if quantized else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_token_list([f"tok{i}" for i in range(300)])
    writer.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float32))
    writer.add_tensor("output.weight", np.zeros((16, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def tar_of(files: dict[str, bytes], *, gzip: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class Layer:
    media_type: str
    data: bytes
    annotations: dict[str, str] = field(default_factory=dict)


def raw_file(media_type: str, path: str, data: bytes) -> Layer:
    return Layer(media_type, data, {FILEPATH: path})


def modelpack_config(**config: Any) -> bytes:
    descriptor_ = config.pop("descriptor", {"name": "tiny-llama", "family": "llama3", "licenses": ["Apache-2.0"]})
    return json.dumps(
        {
            "descriptor": descriptor_,
            "config": config,
            "modelfs": {"type": "layers", "diffIds": []},
        }
    ).encode()


def _annotated(layer: Layer) -> dict[str, Any]:
    return {"annotations": layer.annotations} if layer.annotations else {}


def manifest(
    config: bytes,
    config_type: str,
    layers: list[Layer],
    *,
    artifact_type: str | None = MODELPACK_MANIFEST,
) -> bytes:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer.media_type, layer.data, **_annotated(layer)) for layer in layers],
    }
    if artifact_type is not None:
        body["artifactType"] = artifact_type
    return json.dumps(body).encode()


async def push_model(
    client: TestClient[Any, Any],
    repo: str,
    tag: str,
    config: bytes,
    layers: list[Layer],
    *,
    config_type: str = MODELPACK_CONFIG,
    artifact_type: str | None = MODELPACK_MANIFEST,
) -> str:
    """Push the blobs and the manifest through /v2; the manifest digest."""
    for blob in [config, *(layer.data for layer in layers)]:
        await push_blob(client, repo, blob)
    body = manifest(config, config_type, layers, artifact_type=artifact_type)
    response = await client.put(f"/v2/{repo}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 201, await response.text()
    return str(response.headers["Docker-Content-Digest"])


def hostile_safetensors(claimed: int) -> bytes:
    """A safetensors file whose header length claims ``claimed`` bytes."""
    return struct.pack("<Q", claimed) + b'{"a": 1}'
