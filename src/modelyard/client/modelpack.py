"""A model directory as a CNCF ModelPack v1 artifact, and any model artifact back as files.

Packing (``modelyard push``): every regular file becomes one *raw* layer, so a layer's digest is
the file's own sha256 (a weight file is stored once whoever pushes it, and a v2 that changed one
file shares every other layer with v1). Each layer carries ``org.cncf.model.filepath`` (the path
under the directory, ``/``-separated), ``org.cncf.model.file.metadata+json`` (name, mode, uid, gid,
size, mtime, typeflag: the file attributes the spec asks for), ``org.cncf.model.file.mediatype.untested``
(``"true"`` when the type was guessed from the content, not the name) and
``org.opencontainers.image.title`` (so ORAS clients write the same path).

Which layer type a file gets (first match wins; ``--type KIND=GLOB`` rules come before these):

=============  ==============================================================================
``weight``     ``*.safetensors *.gguf *.ggml *.bin *.pt *.pth *.ckpt *.onnx *.onnx_data *.h5``
               ``*.keras *.pb *.tflite *.mlmodel *.msgpack *.npz *.npy *.pkl *.joblib *.llamafile``
``config``     tokenizer and model configuration: ``*.json`` (except datasets), ``*.yaml``,
               ``*.yml``, ``*.jinja``, ``*.tiktoken``, ``tokenizer.model``, ``*spiece.model``,
               ``*sentencepiece*.model``, ``vocab.txt``, ``merges.txt``, ``Modelfile``
``doc``        ``README*``, ``LICENSE*``, ``LICENCE*``, ``NOTICE*``, ``COPYING*``, ``CITATION*``,
               ``USE_POLICY*``, model cards, ``*.md``, ``*.rst``, ``*.txt``, ``*.pdf``, images
``code``       ``*.py *.ipynb *.sh *.js *.ts *.go *.rs *.c *.cc *.cpp *.h *.cu *.java *.rb``
               ``requirements*.txt``, ``Dockerfile``, ``Makefile``
``dataset``    ``*.csv *.tsv *.parquet *.arrow *.jsonl *.tfrecord``, anything under ``data/``,
               ``dataset/``, ``datasets/``
=============  ==============================================================================

Anything else is sniffed: a GGUF, safetensors or zip (PyTorch) header, or any binary content,
makes it a weight; text makes it a doc (both marked untested). Hidden files and directories
(``.git``, ``.cache``, ``.DS_Store``) are left out. The kinds' media types are the spec's
``application/vnd.cncf.model.{weight,weight.config,doc,code,dataset}.v1.raw``.

The model config (``application/vnd.cncf.model.config.v1+json``) is filled from what is cheap to
read: the Hugging Face ``config.json`` (family from ``model_type``, ``transformer`` architecture,
quantization method, ``torch_dtype``), safetensors headers (precision and parameter count: only
the JSON header at the front of each file is read), GGUF file names (quantization), the model
card's front matter or the LICENSE text (license), and the newest file time (``createdAt``, so
an unchanged directory packs to the same digests).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import stat
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

Kind = Literal["weight", "config", "doc", "code", "dataset"]
KINDS: tuple[Kind, ...] = ("weight", "config", "doc", "code", "dataset")
KIND_ALIASES: dict[str, Kind] = {
    "weight": "weight", "weights": "weight", "model": "weight",
    "config": "config", "weight.config": "config", "weight-config": "config", "tokenizer": "config",
    "doc": "doc", "docs": "doc", "code": "code", "dataset": "dataset", "datasets": "dataset", "data": "dataset",
}  # fmt: skip

MEDIA_TYPES: dict[Kind, str] = {
    "weight": "application/vnd.cncf.model.weight.v1.raw",
    "config": "application/vnd.cncf.model.weight.config.v1.raw",
    "doc": "application/vnd.cncf.model.doc.v1.raw",
    "code": "application/vnd.cncf.model.code.v1.raw",
    "dataset": "application/vnd.cncf.model.dataset.v1.raw",
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG_TYPE = "application/vnd.cncf.model.config.v1+json"

FILEPATH = "org.cncf.model.filepath"
LEGACY_FILEPATH = "org.cnai.model.filepath"
FILE_METADATA = "org.cncf.model.file.metadata+json"
UNTESTED = "org.cncf.model.file.mediatype.untested"
TITLE = "org.opencontainers.image.title"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
CREATED = "org.opencontainers.image.created"

TYPEFLAG_REGULAR = ord("0")  # tar's TypeReg, as the spec's Go struct marshals a byte


class PackError(ValueError):
    """The directory can't be packed as it is (empty, unreadable file, symlink escaping it, …)."""


# -- classification --------------------------------------------------------------------------

_RULES: tuple[tuple[Kind, tuple[str, ...]], ...] = (
    ("dataset", ("data/*", "dataset/*", "datasets/*")),
    ("code", ("requirements*.txt", "dockerfile", "makefile")),
    ("config", ("tokenizer.model", "*spiece.model", "*sentencepiece*.model", "vocab.txt", "merges.txt",
                "modelfile", "*.tiktoken", "*.jinja")),
    ("doc", ("readme*", "license*", "licence*", "notice*", "copying*", "citation*", "use_policy*", "model_card*",
             "modelcard*")),
    ("weight", ("*.safetensors", "*.gguf", "*.ggml", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.onnx", "*.onnx_data",
                "*.h5", "*.keras", "*.pb", "*.tflite", "*.mlmodel", "*.msgpack", "*.npz", "*.npy", "*.pkl",
                "*.joblib", "*.llamafile")),
    ("dataset", ("*.csv", "*.tsv", "*.parquet", "*.arrow", "*.jsonl", "*.jsonl.gz", "*.tfrecord")),
    ("config", ("*.json", "*.yaml", "*.yml")),
    ("code", ("*.py", "*.ipynb", "*.sh", "*.js", "*.ts", "*.go", "*.rs", "*.c", "*.cc", "*.cpp", "*.h", "*.cu",
              "*.java", "*.rb")),
    ("doc", ("*.md", "*.rst", "*.txt", "*.pdf", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.svg", "*.webp", "*.html")),
)  # fmt: skip


def parse_type_rule(rule: str) -> tuple[Kind, str]:
    """``weights=*.bin`` -> (``"weight"``, ``"*.bin"``); a :class:`PackError` for anything else."""
    kind, sep, pattern = rule.partition("=")
    resolved = KIND_ALIASES.get(kind.strip().lower())
    if not sep or not pattern.strip() or resolved is None:
        raise PackError(f"--type {rule!r}: expected KIND=GLOB with KIND one of weight, config, doc, code, dataset")
    return resolved, pattern.strip()


def _matches(path: str, pattern: str) -> bool:
    """A glob against the whole relative path, or against the file name when it has no ``/``."""
    lowered, pattern = path.lower(), pattern.lower()
    if "/" in pattern:
        return fnmatch.fnmatchcase(lowered, pattern)
    return fnmatch.fnmatchcase(lowered.rsplit("/", 1)[-1], pattern)


def classify(path: str, overrides: Sequence[tuple[Kind, str]] = (), source: Path | None = None) -> tuple[Kind, bool]:
    """The kind of a file (by relative path) and whether the guess is untested (content sniffed)."""
    for kind, pattern in overrides:
        if _matches(path, pattern):
            return kind, False
    for kind, patterns in _RULES:
        for pattern in patterns:
            if _matches(path, pattern):
                return kind, False
    return (_sniff(source) if source is not None else "doc"), True


def _sniff(path: Path) -> Kind:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return "doc"
    if head.startswith((b"GGUF", b"PK\x03\x04")) or _looks_like_safetensors(head):
        return "weight"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut multi-byte character at the end of the sample is still text.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "weight"
    return "weight" if b"\x00" in head else "doc"


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length < 100 * 1024 * 1024 and head[8:9] == b"{"


# -- scanning --------------------------------------------------------------------------------


@dataclass
class ModelFile:
    """One file of a model directory, before and after hashing."""

    path: str  # relative, "/"-separated
    source: Path
    size: int
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    kind: Kind
    untested: bool
    digest: str = ""

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]


def _skip(name: str) -> bool:
    return name.startswith(".")


def scan(directory: Path, overrides: Sequence[tuple[Kind, str]] = ()) -> list[ModelFile]:
    """The files of ``directory`` to pack, sorted by path (lexicographic, as the spec advises).

    Symlinks are followed only while they stay inside the directory; one that leads out of it,
    a file that can't be read, something that is not a regular file, or a directory with nothing
    to pack is a :class:`PackError` naming the path.
    """
    root = Path(directory)
    if not root.exists():
        raise PackError(f"{root} does not exist")
    if not root.is_dir():
        raise PackError(f"{root} is not a directory (push takes a model directory)")
    real_root = root.resolve()
    files: list[ModelFile] = []
    seen_dirs: set[Path] = set()
    for current, dirnames, filenames in os.walk(root, followlinks=True, onerror=_walk_error):
        here = Path(current)
        real_here = here.resolve()
        if not real_here.is_relative_to(real_root):
            raise PackError(f"{here} is a symlink leading out of {root} (to {real_here}); copy the files in instead")
        if real_here in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real_here)
        dirnames[:] = sorted(d for d in dirnames if not _skip(d))
        for name in sorted(filenames):
            if _skip(name):
                continue
            files.append(_model_file(root, real_root, here / name, overrides))
    if not files:
        raise PackError(f"{root} has no files to push (hidden files are left out)")
    files.sort(key=lambda f: f.path)
    return files


def _walk_error(error: OSError) -> None:
    raise PackError(f"cannot read directory {error.filename}: {error.strerror}")


def _model_file(root: Path, real_root: Path, path: Path, overrides: Sequence[tuple[Kind, str]]) -> ModelFile:
    relative = path.relative_to(root).as_posix()
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(real_root):
            raise PackError(f"{relative} is a symlink leading out of {root} (to {target}); copy the file in instead")
    try:
        info = path.stat()
    except OSError as exc:
        raise PackError(f"cannot read {relative}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise PackError(f"{relative} is not a regular file")
    if not os.access(path, os.R_OK):
        raise PackError(f"cannot read {relative}: permission denied")
    kind, untested = classify(relative, overrides, path)
    return ModelFile(relative, path, info.st_size, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                     info.st_mtime_ns, kind, untested)  # fmt: skip


# -- the manifest and config -----------------------------------------------------------------


def _rfc3339(mtime_ns: int) -> str:
    """Go's RFC 3339 with nanoseconds (as ``time.Time`` marshals), in UTC."""
    seconds, nanos = divmod(mtime_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def layer_descriptor(item: ModelFile) -> dict[str, Any]:
    metadata = {"name": PurePosixPath(item.path).name, "mode": item.mode, "uid": item.uid, "gid": item.gid,
                "size": item.size, "mtime": _rfc3339(item.mtime_ns), "typeflag": TYPEFLAG_REGULAR}  # fmt: skip
    return {
        "mediaType": item.media_type,
        "digest": item.digest,
        "size": item.size,
        "annotations": {
            FILEPATH: item.path,
            FILE_METADATA: json.dumps(metadata, separators=(",", ":")),
            UNTESTED: "true" if item.untested else "false",
            TITLE: item.path,
        },
    }


@dataclass
class PackedModel:
    """What ``push`` sends: the files (hashed), the config blob and the manifest."""

    files: list[ModelFile]
    config: bytes
    manifest: bytes
    config_digest: str = ""
    manifest_digest: str = ""
    model_config: dict[str, Any] = field(default_factory=dict)


def build(
    files: list[ModelFile],
    *,
    name: str | None = None,
    annotations: dict[str, str] | None = None,
    base: tuple[str, str] | None = None,
) -> PackedModel:
    """The config and manifest for hashed ``files``. ``base`` is ``(name, digest)`` of the model
    this one derives from."""
    from modelyard.client.oci import sha256_digest

    model_config = describe(files, name=name)
    config = json.dumps(model_config, indent=2, sort_keys=False).encode()
    config_digest = sha256_digest(config)
    manifest_annotations: dict[str, str] = {}
    if files:
        manifest_annotations[CREATED] = model_config["descriptor"]["createdAt"]
    if base is not None:
        manifest_annotations[BASE_NAME], manifest_annotations[BASE_DIGEST] = base
    manifest_annotations.update(annotations or {})
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config)},
        "layers": [layer_descriptor(item) for item in files],
    }
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    body = json.dumps(manifest, indent=2).encode()
    return PackedModel(files, config, body, config_digest, sha256_digest(body), model_config)


_SAFETENSORS_PRECISION = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3",
    "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U64": "uint64",
    "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool", "C64": "complex64",
}  # fmt: skip
_TORCH_PRECISION = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "float64": "float64",
                    "half": "float16", "float": "float32", "int8": "int8"}  # fmt: skip
_FORMATS = {".safetensors": "safetensors", ".gguf": "gguf", ".ggml": "gguf", ".onnx": "onnx", ".pt": "pt",
            ".pth": "pt", ".bin": "pt", ".ckpt": "pt", ".h5": "keras", ".keras": "keras", ".tflite": "tflite",
            ".pb": "tensorflow", ".mlmodel": "coreml", ".msgpack": "flax"}  # fmt: skip
_GGUF_QUANT = re.compile(r"(?i)(?:^|[-_.])(i?q\d(?:_[a-z0-9]+)*|f16|bf16|f32)(?=\.gguf$)")
_SPDX = {"apache-2.0": "Apache-2.0", "mit": "MIT", "bsd-3-clause": "BSD-3-Clause", "bsd-2-clause": "BSD-2-Clause",
         "gpl-3.0": "GPL-3.0", "lgpl-3.0": "LGPL-3.0", "mpl-2.0": "MPL-2.0", "cc-by-4.0": "CC-BY-4.0",
         "cc-by-sa-4.0": "CC-BY-SA-4.0", "cc-by-nc-4.0": "CC-BY-NC-4.0", "openrail": "OpenRAIL",
         "bigscience-openrail-m": "BigScience-OpenRAIL-M", "cc0-1.0": "CC0-1.0", "unlicense": "Unlicense"}  # fmt: skip
_LICENSE_TEXTS = (
    ("Apache License", "Apache-2.0"),
    ("MIT License", "MIT"),
    ("Permission is hereby granted, free of charge", "MIT"),
    ("GNU GENERAL PUBLIC LICENSE", "GPL-3.0"),
    ("Mozilla Public License", "MPL-2.0"),
)
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


def safetensors_summary(path: Path) -> tuple[int, dict[str, int]] | None:
    """(parameter count, bytes per dtype) from a safetensors header, reading only the header;
    ``None`` for a file that isn't one (or claims an absurd header)."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                return None
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_SAFETENSORS_HEADER or length > path.stat().st_size:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict):
        return None
    params = 0
    by_dtype: dict[str, int] = {}
    for name, tensor in header.items():
        if name == "__metadata__" or not isinstance(tensor, dict):
            continue
        shape, dtype, offsets = tensor.get("shape"), tensor.get("dtype"), tensor.get("data_offsets")
        if not isinstance(shape, list) or not isinstance(dtype, str):
            continue
        count = 1
        for dim in shape:
            count *= int(dim) if isinstance(dim, int) else 0
        params += count
        size = offsets[1] - offsets[0] if isinstance(offsets, list) and len(offsets) == 2 else count
        by_dtype[dtype] = by_dtype.get(dtype, 0) + int(size)
    return params, by_dtype


def param_size(count: int) -> str | None:
    """``7_241_732_096`` -> ``"7.2B"`` (the spec's ``<count><scale-prefix>``, one decimal at most)."""
    for scale, letter in ((10**15, "Q"), (10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= scale:
            value = f"{count / scale:.1f}".removesuffix(".0")
            return f"{value}{letter}"
    return f"{count / 1000:.1f}K" if count >= 100 else None


def _read_json(path: Path, limit: int = 4 * 1024 * 1024) -> dict[str, Any]:
    try:
        if path.stat().st_size > limit:
            return {}
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _license_of(files: Iterable[ModelFile]) -> list[str]:
    by_name = {item.path.lower(): item for item in files}
    readme = by_name.get("readme.md")
    if readme is not None and readme.size < 1024 * 1024:
        text = readme.source.read_text(encoding="utf-8", errors="replace")
        front = re.match(r"^---\s*\n(.*?)\n---", text, re.DOTALL)
        if front is not None:
            found = re.search(r"(?m)^license:\s*['\"]?([A-Za-z0-9.+-]+)", front.group(1))
            if found is not None:
                return [_SPDX.get(found.group(1).lower(), found.group(1))]
    for name in ("license", "license.md", "license.txt", "licence"):
        item = by_name.get(name)
        if item is None:
            continue
        with open(item.source, "rb") as handle:
            head = handle.read(2048).decode("utf-8", errors="replace")
        for needle, spdx in _LICENSE_TEXTS:
            if needle in head:
                return [spdx]
    return []


def describe(files: Sequence[ModelFile], *, name: str | None = None) -> dict[str, Any]:
    """The ModelPack config (``descriptor``, ``config``, ``modelfs``) of hashed files."""
    descriptor: dict[str, Any] = {"createdAt": _rfc3339(max((f.mtime_ns for f in files), default=0))}
    if name:
        descriptor["name"] = name
    settings: dict[str, Any] = {}
    by_path = {item.path: item for item in files}
    hf = _read_json(by_path["config.json"].source) if "config.json" in by_path else {}
    if isinstance(hf.get("model_type"), str):
        descriptor["family"] = hf["model_type"]
    if any(key in hf for key in ("num_attention_heads", "n_head", "num_heads", "n_heads")):
        settings["architecture"] = "transformer"
    weights = [item for item in files if item.kind == "weight"]
    formats: dict[str, int] = {}
    for item in weights:
        fmt = _FORMATS.get(PurePosixPath(item.path).suffix.lower())
        if fmt is not None:
            formats[fmt] = formats.get(fmt, 0) + item.size
    if formats:
        settings["format"] = max(formats, key=lambda k: formats[k])
    params = 0
    dtypes: dict[str, int] = {}
    for item in weights:
        if item.path.lower().endswith(".safetensors"):
            summary = safetensors_summary(item.source)
            if summary is not None:
                params += summary[0]
                for dtype, size in summary[1].items():
                    dtypes[dtype] = dtypes.get(dtype, 0) + size
    if params and (size_text := param_size(params)):
        settings["paramSize"] = size_text
    ordered = sorted(dtypes, key=lambda d: -dtypes[d])
    precisions = [_SAFETENSORS_PRECISION[d] for d in ordered if d in _SAFETENSORS_PRECISION]
    if not precisions and isinstance(hf.get("torch_dtype"), str) and hf["torch_dtype"] in _TORCH_PRECISION:
        precisions = [_TORCH_PRECISION[hf["torch_dtype"]]]
    if precisions:
        settings["precision"] = ",".join(dict.fromkeys(precisions))
    quant = hf.get("quantization_config")
    if isinstance(quant, dict) and isinstance(quant.get("quant_method"), str):
        settings["quantization"] = quant["quant_method"]
    else:
        for item in weights:
            found = _GGUF_QUANT.search(PurePosixPath(item.path).name)
            if found is not None and found.group(1).lower() not in ("f16", "bf16", "f32"):
                settings["quantization"] = found.group(1).lower()
                break
    licenses = _license_of(files)
    if licenses:
        descriptor["licenses"] = licenses
    return {
        "descriptor": descriptor,
        "config": settings,
        "modelfs": {"type": "layers", "diffIds": [item.digest for item in files]},
    }


# -- reading artifacts back as files ---------------------------------------------------------

DOCKER_AI_NAMES = {
    "application/vnd.docker.ai.gguf.v3": "model.gguf",
    "application/vnd.docker.ai.safetensors": "model.safetensors",
    "application/vnd.docker.ai.license": "LICENSE",
    "application/vnd.docker.ai.mmproj": "model.mmproj",
    "application/vnd.docker.ai.chat.template.jinja": "template.jinja",
    "application/vnd.docker.ai.dduf": "model.dduf",
}
Archive = Literal["tar", "tar+gzip", "tar+zstd"]
ORAS_UNPACK = "io.deis.oras.content.unpack"
_ARCHIVE_FAMILIES = ("application/vnd.cncf.model.", "application/vnd.cnai.model.", "application/vnd.kitops.",
                     "application/vnd.docker.ai.")  # fmt: skip


@dataclass(frozen=True)
class ArtifactFile:
    """A layer as a file to write: ``path`` for a raw layer, or a tar ``archive`` to extract
    (``path`` is then what its annotation says it holds, for filtering and messages)."""

    path: str
    digest: str
    size: int
    media_type: str
    archive: Archive | None = None
    mode: int | None = None
    mtime: str | None = None


def _archive_of(media_type: str) -> Archive | None:
    base = media_type.lower()
    if base.endswith((".tar+gzip", ".tar.gzip", ".tar.gz", "tar+gz")):
        return "tar+gzip"
    if base.endswith((".tar+zstd", ".tar.zstd")):
        return "tar+zstd"
    if base.endswith(".tar") or base in ("application/vnd.oci.image.layer.v1.tar", "application/x-tar"):
        return "tar"
    return None


def files_of(manifest: dict[str, Any]) -> list[ArtifactFile]:
    """The files an image manifest's layers stand for, whatever packed them: ModelPack
    (``org.cncf.model.filepath``, or the older ``org.cnai.model.filepath``), KitOps ModelKits (tar
    layers with the same annotation), Docker model artifacts (``application/vnd.docker.ai.*``,
    named by annotation or by type) and ORAS artifacts (``org.opencontainers.image.title``; ORAS
    types every file ``application/vnd.oci.image.layer.v1.tar`` and marks the tars it made of
    directories with ``io.deis.oras.content.unpack``).
    A raw layer without any name is written as ``blobs/<algorithm>-<hex>``."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ValueError("the manifest has no layers (is it an index or an image config?)")
    found: list[ArtifactFile] = []
    used: dict[str, int] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            raise ValueError("a layer descriptor is not a JSON object")
        media_type, digest, size = str(layer.get("mediaType", "")), str(layer.get("digest", "")), layer.get("size")
        if not digest or not isinstance(size, int):
            raise ValueError("a layer descriptor lacks its digest or size")
        annotations = layer.get("annotations") or {}
        path = annotations.get(FILEPATH) or annotations.get(LEGACY_FILEPATH) or annotations.get(TITLE)
        archive = _archive_of(media_type)
        if archive is not None and not media_type.startswith(_ARCHIVE_FAMILIES) and annotations.get(TITLE):
            # ORAS gives every file the generic layer type; only a directory it packed is a tar.
            archive = archive if annotations.get(ORAS_UNPACK) == "true" else None
        if not path:
            if archive is not None:
                path = "."
            else:
                default = DOCKER_AI_NAMES.get(media_type.lower())
                path = default or f"blobs/{digest.replace(':', '-')}"
                if default is not None and default in used:
                    stem, dot, suffix = default.partition(".")
                    path = f"{stem}-{used[default]}{dot}{suffix}"
                used[default or path] = used.get(default or path, 0) + 1
        mode, mtime = None, None
        raw_metadata = annotations.get(FILE_METADATA)
        if isinstance(raw_metadata, str):
            try:
                metadata = json.loads(raw_metadata)
            except ValueError:
                metadata = {}
            if isinstance(metadata, dict):
                mode = metadata.get("mode") if isinstance(metadata.get("mode"), int) else None
                mtime = metadata.get("mtime") if isinstance(metadata.get("mtime"), str) else None
        found.append(ArtifactFile(str(path), digest, size, media_type, archive, mode, mtime))
    return found


def parse_mtime(value: str) -> float | None:
    """An RFC 3339 time (as the file metadata annotation holds it) as a POSIX timestamp."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value.strip())
    if match is None:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        moment = datetime.fromisoformat(match.group(1) + zone)
    except ValueError:
        return None
    fraction = float("0." + match.group(2)) if match.group(2) else 0.0
    return moment.timestamp() + fraction
