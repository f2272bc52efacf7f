"""OCI image layouts written by hand (no umoci): random gzip'ed tar layers, config, manifest, index.

Layers are already ``tar+gzip``, so skopeo copies them as they are and every digest the test
computes here is the digest the registry must end up storing.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def random_layer(size: int, name: str = "payload.bin") -> tuple[bytes, bytes]:
    """A gzip'ed tar holding one file of ``size`` random bytes: (compressed, uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, compresslevel=1, mtime=0), uncompressed


@dataclass
class Image:
    """One platform image: its blobs by digest and its manifest bytes."""

    manifest: bytes
    config: bytes
    layers: list[bytes]
    platform: dict[str, str]

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        return {sha256(b): b for b in [self.config, *self.layers]}

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": OCI_MANIFEST, "digest": self.digest, "size": len(self.manifest), **extra}


def build_image(layer_sizes: list[int], *, architecture: str = "amd64", os_name: str = "linux") -> Image:
    layers, diff_ids = [], []
    for number, size in enumerate(layer_sizes):
        compressed, uncompressed = random_layer(size, f"layer{number}.bin")
        layers.append(compressed)
        diff_ids.append(sha256(uncompressed))
    config = json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "config": {"Labels": {"org.example.model": "llm"}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {n}"} for n in range(len(layers))],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": sha256(b), "size": len(b)} for b in layers],
        }
    ).encode()
    return Image(manifest, config, layers, {"architecture": architecture, "os": os_name})


def build_index(images: list[Image]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [image.descriptor(platform=image.platform) for image in images],
        }
    ).encode()


@dataclass
class Layout:
    """An OCI image layout directory (``oci:<path>:<tag>`` for skopeo)."""

    path: Path
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write_blob(self, data: bytes) -> str:
        digest = sha256(data)
        target = self.path / "blobs" / "sha256" / digest.split(":", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return digest

    def add_image(self, tag: str, image: Image) -> None:
        for blob in image.blobs.values():
            self.write_blob(blob)
        self.write_blob(image.manifest)
        self.refs[tag] = image.descriptor(annotations={REF_NAME: tag})
        self._save()

    def add_index(self, tag: str, images: list[Image]) -> bytes:
        for image in images:
            for blob in image.blobs.values():
                self.write_blob(blob)
            self.write_blob(image.manifest)
        index = build_index(images)
        self.write_blob(index)
        self.refs[tag] = {
            "mediaType": OCI_INDEX,
            "digest": sha256(index),
            "size": len(index),
            "annotations": {REF_NAME: tag},
        }
        self._save()
        return index

    def _save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(self.refs.values())}
        (self.path / "index.json").write_text(json.dumps(index))


def read_layout(path: Path) -> dict[str, Any]:
    """``index.json`` of a layout skopeo wrote."""
    return dict(json.loads((path / "index.json").read_text()))


def read_blob(path: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":", 1)
    return (path / "blobs" / algorithm / hexdigest).read_bytes()


def layout_blobs(path: Path) -> dict[str, bytes]:
    """Every blob in a layout, by digest (verified against its name)."""
    found = {}
    for file in (path / "blobs" / "sha256").iterdir():
        data = file.read_bytes()
        assert sha256(data) == f"sha256:{file.name}", f"{file} does not match its name"
        found[f"sha256:{file.name}"] = data
    return found
