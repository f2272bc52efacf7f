"""Benchmark inputs, generated once and cached in the work directory (keyed by their sizes).

* ``blob-<size>.bin``: random bytes from ``os.urandom`` (in 4 MiB pieces), and its sha256.
* ``chunks-<size>-<chunk>/``: the same bytes split into chunk files for ``curl -T`` PATCHes.
* ``big-<size>.bin``: ``size`` bytes made by repeating the blob (for the 4 GiB RSS workload).
* OCI image layouts for skopeo: every layer is a real tar in a real gzip stream written at
  compression level 0 (stored blocks), so it is cheap to build from random data, skopeo
  recognises it as gzip and keeps it (and its digest) as is, and its config's diff_ids are right.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from common import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, MiB, canonical_json, format_size, log

PIECE = 4 * MiB


@dataclass(frozen=True)
class BlobFile:
    path: Path
    size: int
    digest: str


def _digest_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while piece := handle.read(PIECE):
            hasher.update(piece)
    return f"sha256:{hasher.hexdigest()}"


def _cached_digest(path: Path) -> str:
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.exists():
        return sidecar.read_text().strip()
    digest = _digest_file(path)
    sidecar.write_text(digest + "\n")
    return digest


def random_blob(work: Path, size: int) -> BlobFile:
    path = work / f"blob-{format_size(size)}.bin"
    if not path.exists() or path.stat().st_size != size:
        log(f"generating {format_size(size)} of random bytes -> {path}")
        tmp = path.with_suffix(".tmp")
        hasher = hashlib.sha256()
        with open(tmp, "wb", buffering=0) as handle:
            left = size
            while left:
                piece = os.urandom(min(PIECE, left))
                hasher.update(piece)
                handle.write(piece)
                left -= len(piece)
        tmp.replace(path)
        path.with_name(path.name + ".sha256").write_text(f"sha256:{hasher.hexdigest()}\n")
    return BlobFile(path, size, _cached_digest(path))


def _copy_range(source: Path, offset: int, length: int, target: Path) -> None:
    """Copy ``length`` bytes of ``source`` from ``offset`` into ``target``, cycling if needed."""
    src_size = source.stat().st_size
    with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
        left = length
        position = offset % src_size
        while left:
            src.seek(position)
            piece = src.read(min(PIECE, left, src_size - position))
            dst.write(piece)
            left -= len(piece)
            position = (position + len(piece)) % src_size


def chunk_files(work: Path, blob: BlobFile, chunk: int) -> list[Path]:
    folder = work / f"chunks-{format_size(blob.size)}-{format_size(chunk)}"
    done = folder / ".done"
    parts = [folder / f"part-{i:05d}" for i in range((blob.size + chunk - 1) // chunk)]
    if not done.exists():
        log(f"splitting the blob into {len(parts)} chunk files of {format_size(chunk)}")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for index, part in enumerate(parts):
            _copy_range(blob.path, index * chunk, min(chunk, blob.size - index * chunk), part)
        done.touch()
    return parts


def sized_file(work: Path, blob: BlobFile, size: int) -> BlobFile:
    """A file of ``size`` bytes: the blob itself, or the blob repeated."""
    if size == blob.size:
        return blob
    path = work / f"big-{format_size(size)}-from-{format_size(blob.size)}.bin"
    if not path.exists() or path.stat().st_size != size:
        log(f"building {format_size(size)} file {path} from the random blob")
        tmp = path.with_suffix(".tmp")
        _copy_range(blob.path, 0, size, tmp)
        tmp.replace(path)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    return BlobFile(path, size, _cached_digest(path))


# -- OCI image layouts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    name: str  # the file's name inside the layer's tar
    source: Path | None  # where its bytes come from (None: os.urandom)
    offset: int
    length: int


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    total_bytes: int  # config + layers + manifest: what a push or pull moves


class _Sink:
    """Receives the uncompressed tar stream; hashes it (diff_id), gzips it (level 0), hashes and writes that."""

    def __init__(self, out: io.BufferedWriter) -> None:
        self.out = out
        self.diff = hashlib.sha256()
        self.digest = hashlib.sha256()
        self.size = 0
        self._gzip = zlib.compressobj(0, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def _emit(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self.out.write(data)
            self.size += len(data)

    def write(self, data: bytes) -> None:
        self.diff.update(data)
        self._emit(self._gzip.compress(data))

    def finish(self) -> None:
        self._emit(self._gzip.flush())


@dataclass(frozen=True)
class _Layer:
    digest: str
    size: int
    diff_id: str

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": OCI_LAYER_GZIP, "digest": self.digest, "size": self.size}


def _write_layer(blobs: Path, spec: LayerSpec) -> _Layer:
    tmp = blobs / f".tmp-{os.getpid()}"
    with open(tmp, "wb") as out:
        sink = _Sink(out)
        info = tarfile.TarInfo(spec.name)
        info.size = spec.length
        info.mode = 0o644
        info.mtime = 0
        sink.write(info.tobuf(format=tarfile.PAX_FORMAT))
        if spec.source is None:
            sink.write(os.urandom(spec.length))
        else:
            src_size = spec.source.stat().st_size
            with open(spec.source, "rb", buffering=0) as src:
                left, position = spec.length, spec.offset % src_size
                while left:
                    src.seek(position)
                    piece = src.read(min(PIECE, left, src_size - position))
                    sink.write(piece)
                    left -= len(piece)
                    position = (position + len(piece)) % src_size
        padding = (-spec.length) % tarfile.BLOCKSIZE
        sink.write(b"\0" * (padding + 2 * tarfile.BLOCKSIZE))  # file padding + end-of-archive
        sink.finish()
    digest = f"sha256:{sink.digest.hexdigest()}"
    tmp.replace(blobs / digest.split(":")[1])
    return _Layer(digest, sink.size, f"sha256:{sink.diff.hexdigest()}")


def _write_blob(blobs: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def build_layout(folder: Path, images: dict[str, list[LayerSpec]]) -> dict[str, ImageInfo]:
    """An OCI image layout holding one image per ref; cached while ``folder/.done`` exists."""
    summary = folder / ".done"
    if summary.exists():
        saved = json.loads(summary.read_text())
        return {ref: ImageInfo(ref, total) for ref, total in saved.items()}
    log(f"building OCI layout {folder} ({len(images)} image(s))")
    shutil.rmtree(folder, ignore_errors=True)
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index: list[dict[str, object]] = []
    totals: dict[str, int] = {}
    for ref, layers in images.items():
        written = [_write_layer(blobs, spec) for spec in layers]
        config = canonical_json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"bench.ref": ref}},
                "rootfs": {"type": "layers", "diff_ids": [w.diff_id for w in written]},
            }
        )
        config_desc = {"mediaType": OCI_CONFIG, **_write_blob(blobs, config)}
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_desc,
                "layers": [w.descriptor() for w in written],
                "annotations": {"org.opencontainers.image.title": f"modelyard bench {ref}"},
            }
        )
        manifest_desc = _write_blob(blobs, manifest)
        index.append(
            {"mediaType": OCI_MANIFEST, **manifest_desc, "annotations": {"org.opencontainers.image.ref.name": ref}}
        )
        layer_bytes = sum(w.size for w in written)
        totals[ref] = layer_bytes + len(config) + len(manifest)
    top = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
    (folder / "index.json").write_bytes(canonical_json(top))
    summary.write_text(json.dumps(totals))
    return {ref: ImageInfo(ref, total) for ref, total in totals.items()}


def model_layout(work: Path, source: BlobFile, weights: int) -> tuple[Path, ImageInfo]:
    """A model image: one big weights layer plus a few small layers (config, tokenizer, card)."""
    folder = work / f"oci-model-{format_size(weights)}"
    layers = [
        LayerSpec("model/model.safetensors", source.path, 0, weights),
        LayerSpec("model/tokenizer.json", None, 0, 2 * MiB),
        LayerSpec("model/config.json", None, 0, 4096),
        LayerSpec("model/README.md", None, 0, 16 * 1024),
    ]
    images = build_layout(folder, {"model": layers})
    return folder, images["model"]


def parallel_layout(work: Path, source: BlobFile, count: int, size: int) -> tuple[Path, list[ImageInfo]]:
    """``count`` distinct images of one ``size`` layer each, cut from different parts of the blob."""
    folder = work / f"oci-parallel-{count}x{format_size(size)}"
    images = {f"p{i}": [LayerSpec(f"weights/shard-{i:02d}.bin", source.path, i * size, size)] for i in range(count)}
    built = build_layout(folder, images)
    return folder, [built[f"p{i}"] for i in range(count)]


def small_image() -> tuple[bytes, bytes, bytes]:
    """(config, layer, manifest) of a tiny image for the manifest and tag-list workloads."""
    layer = os.urandom(1024)
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _sha(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _sha(layer), "size": len(layer)}],
        }
    )
    return config, layer, manifest


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
