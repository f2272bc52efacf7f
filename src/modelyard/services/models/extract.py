"""From a pushed manifest to :class:`ModelFacts`: the config it declares, the files its layers
hold, and what the cheaply readable files say -- within :class:`Limits`.

Order of trust, field by field: a count made from the weights themselves (safetensors and GGUF
headers) over a declared ``paramSize``; the config's declared format, precision, quantization
and license over what files suggest; a specific architecture (``llama`` from ``config.json`` or
GGUF) over a generic declared one (``transformer``). Whatever is declared is kept in
``details["declared"]``.

A config that cannot be read, or a weight header that cannot (malformed, or past a limit),
makes the version ``opaque`` with the first such reason; its files are still listed. Only
headers are read: a safetensors file's JSON header, a GGUF file's metadata and tensor infos,
``config.json``, the first kilobytes of a README or LICENSE.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest
from modelyard.domain.manifest import Descriptor, ParsedManifest
from modelyard.domain.models import Archive, ModelFacts, ModelFile, TensorEntry
from modelyard.services.models import docs, hfconfig, packaging, safetensors
from modelyard.services.models import gguf as gguf_header
from modelyard.services.models.source import BlobReader, Budget, LimitExceeded, Unreadable
from modelyard.services.models.tarindex import clean_path, list_members
from modelyard.storage.base import BlobStore

MiB = 1024 * 1024
_GENERIC_ARCHITECTURES = {"transformer", "transformers", "cnn", "rnn", "mlp", "diffusion", "other"}
_FORMATS = {
    ".safetensors": "safetensors", ".gguf": "gguf", ".onnx": "onnx", ".bin": "pt", ".pt": "pt", ".pth": "pt",
    ".h5": "keras", ".tflite": "tflite", ".ckpt": "ckpt", ".npz": "npz",
}  # fmt: skip
_BITS = re.compile(r"(?:^|[^a-z])(?:int|uint|q|w)(\d{1,2})(?:$|[^0-9])|(\d{1,2})[- ]?bits?\b")
_CARD = re.compile(r"(^|/)(readme|model_card|modelcard)(\.md|\.txt)?$", re.I)
_LICENSE = re.compile(r"(^|/)(license|licence|copying)(\.md|\.txt)?$", re.I)


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one extraction (all reads, all files, one deadline)."""

    seconds: float = 20.0
    max_read_bytes: int = 512 * MiB
    max_config_bytes: int = 4 * MiB
    max_safetensors_header: int = 100 * MiB
    max_tensors: int = 1_000_000
    max_indexed_tensors: int = 500_000  # rows of the tensor index, over all files of a version
    max_files: int = 10_000
    max_headers: int = 256  # weight files whose header is read
    max_uncompressed: int = 1024 * MiB  # of gzip tars, decompressed to list their members
    doc_bytes: int = 64 * 1024
    gguf: gguf_header.GgufLimits = field(default_factory=gguf_header.GgufLimits)


def quant_bits(quantization: str | None) -> int | None:
    """``int4``, ``q4_k_m``, ``4bit``, ``w8a8`` -> 4, 4, 4, 8."""
    if not quantization:
        return None
    match = _BITS.search(quantization.lower())
    return int(match.group(1) or match.group(2)) if match else None


@dataclass
class _Found:
    """What the files said, accumulated over the files read."""

    parameters: int = 0
    counted: bool = False
    precisions: Counter[str] = field(default_factory=Counter)
    quantization: str | None = None
    bits: int | None = None
    architecture: str | None = None
    name: str | None = None
    license: str | None = None
    context_length: int | None = None
    card: str | None = None
    problems: list[str] = field(default_factory=list)  # make the version opaque
    notes: list[str] = field(default_factory=list)  # do not
    details: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, tuple[TensorEntry, ...]] = field(default_factory=dict)
    tensor_count: int = 0


class Extractor:
    def __init__(self, store: BlobStore, limits: Limits | None = None) -> None:
        self._store = store
        self.limits = limits or Limits()

    def extract(self, parsed: ParsedManifest) -> ModelFacts:
        """Blocking: run it in a worker thread."""
        if parsed.is_index:
            return ModelFacts(
                packaging="index",
                status="opaque",
                reason="an index of manifests: each manifest it lists is a version of its own",
                total_size=sum(child.size for child in parsed.children),
            )
        limits = self.limits
        reader = BlobReader(self._store, Budget(limits.max_read_bytes, limits.seconds))
        config = parsed.config
        kind = packaging.packaging_of(config.media_type if config else None, parsed.artifact_type)
        declared: dict[str, Any] = {}
        problem: str | None = None
        if config is not None and kind != "artifact":
            try:
                declared = self._declared(reader, kind, config, parsed.annotations or {})
            except (Unreadable, LimitExceeded) as exc:
                problem = str(exc)
        found = _Found()
        files = [] if kind == "image" else self._files(reader, kind, parsed.layers, found)
        if problem is None:
            self._read_files(reader, files, found)
        total = sum(layer.size for layer in parsed.layers)
        return self._merge(kind, declared, found, files, total, problem or next(iter(found.problems), None))

    # -- the config ------------------------------------------------------------------------

    def _declared(
        self, reader: BlobReader, kind: str, config: Descriptor, annotations: dict[str, str]
    ) -> dict[str, Any]:
        if config.size > self.limits.max_config_bytes:
            raise LimitExceeded(f"config is {config.size} bytes, over the {self.limits.max_config_bytes} byte limit")
        data = packaging.load_json(reader.read(config.digest, 0, config.size), "config")
        if kind.startswith("modelpack"):
            return packaging.modelpack(data)
        if kind == "docker-model":
            return packaging.docker_model(data)
        if kind == "kitops":
            return packaging.kitops(data)
        return packaging.image(data, annotations)

    # -- the files -------------------------------------------------------------------------

    def _files(self, reader: BlobReader, kind: str, layers: tuple[Descriptor, ...], found: _Found) -> list[ModelFile]:
        files: dict[str, ModelFile] = {}
        for index, layer in enumerate(layers):
            if len(files) >= self.limits.max_files:
                found.notes.append(f"files past the first {self.limits.max_files} are not listed")
                break
            annotations = layer.annotations or {}
            named = next((annotations[k] for k in packaging.FILEPATH_ANNOTATIONS if annotations.get(k)), None)
            path = clean_path(named) if named else None
            archive = packaging.archive_of(layer.media_type)
            if archive == "tar" and kind == "artifact" and not self._is_tar(reader, layer):
                archive = "raw"  # ``oras push`` labels plain files application/vnd.oci.image.layer.v1.tar
            if archive in ("tar", "tar+gzip"):
                listed = self._members(reader, index, layer, archive, found)
                if listed is not None:
                    for file in listed:
                        files.setdefault(file.path, file)
                    continue
            if path is None:
                path = self._default_name(index, layer)
                path = f"{path}-{index}" if path in files else path
            if path in files:
                found.notes.append(f"layer {index} repeats the path {path}: only the first is listed")
                continue
            files[path] = ModelFile(
                path=path,
                size=layer.size,
                layer_digest=layer.digest,
                media_type=layer.media_type,
                layer_index=index,
                kind=packaging.kind_of(layer.media_type, path),
                archive=archive if archive == "tar+zstd" else "raw",
            )
        return list(files.values())[: self.limits.max_files]

    @staticmethod
    def _default_name(index: int, layer: Descriptor) -> str:
        media = layer.media_type
        if media.startswith("application/vnd.docker.ai."):
            if "license" in media:
                return "LICENSE"
            suffix = ".gguf" if "gguf" in media else ".safetensors" if "safetensors" in media else ""
            return f"model-{index}{suffix}"
        return f"layer-{index}-{Digest.parse(layer.digest).hex[:12]}"

    @staticmethod
    def _is_tar(reader: BlobReader, layer: Descriptor) -> bool:
        if layer.size < 512:
            return False
        try:
            head = reader.read(layer.digest, 0, 512)
        except (Unreadable, LimitExceeded):
            return False
        return head[257:262] == b"ustar"

    def _members(
        self, reader: BlobReader, index: int, layer: Descriptor, archive: Archive, found: _Found
    ) -> list[ModelFile] | None:
        def capture(path: str, size: int) -> int:
            if path.endswith(".safetensors"):
                return self.limits.max_config_bytes  # enough for the headers of most shards
            if path.rsplit("/", 1)[-1] == "config.json" or _CARD.search(path) or _LICENSE.search(path):
                return min(size, self.limits.max_config_bytes)
            return 0

        try:
            members, captured, note = list_members(
                reader.open(layer.digest, 0, layer.size),
                archive,
                budget=reader.budget,
                max_members=self.limits.max_files,
                max_uncompressed=self.limits.max_uncompressed,
                capture=capture,
            )
        except (Unreadable, LimitExceeded) as exc:
            found.notes.append(f"layer {index}: {exc}")
            return None
        if note:
            found.notes.append(f"layer {index}: {note}")
        found.details.setdefault("_captured", {}).update(captured)
        return [
            ModelFile(
                path=m.path,
                size=m.size,
                layer_digest=layer.digest,
                media_type=layer.media_type,
                layer_index=index,
                kind=packaging.kind_of(layer.media_type, m.path),
                archive=archive,
                member_offset=m.offset,
                mode=m.mode,
            )
            for m in members
        ]

    def _open(self, reader: BlobReader, file: ModelFile, found: _Found) -> Any:
        """The file's bytes as a readable (seekable where the layer is not compressed)."""
        if file.archive == "raw":
            return reader.open(file.layer_digest, 0, file.size)
        if file.archive == "tar" and file.member_offset is not None:
            return reader.open(file.layer_digest, file.member_offset, file.size)
        captured = found.details.get("_captured", {}).get(file.path)
        return None if captured is None else io.BytesIO(captured)

    def _read_files(self, reader: BlobReader, files: list[ModelFile], found: _Found) -> None:
        headers = 0
        hf: hfconfig.HfConfig | None = None
        configs = sorted((f for f in files if f.path.rsplit("/", 1)[-1] == "config.json"), key=lambda f: f.path)
        if configs and configs[0].size <= self.limits.max_config_bytes:
            stream = self._open(reader, configs[0], found)
            if stream is not None:
                try:
                    hf = hfconfig.parse(stream.read(configs[0].size))
                except (Unreadable, LimitExceeded) as exc:
                    found.problems.append(f"{configs[0].path}: {exc}")
        for file in files:
            name = file.path.lower()
            if not name.endswith((".safetensors", ".gguf")):
                continue
            if headers >= self.limits.max_headers:
                found.notes.append(f"headers of weight files past the first {self.limits.max_headers} are not read")
                break
            stream = self._open(reader, file, found)
            if stream is None:
                found.notes.append(f"{file.path}: in a compressed layer, header not read")
                continue
            headers += 1
            try:
                if name.endswith(".safetensors"):
                    self._safetensors(stream, hf, found, file)
                else:
                    self._gguf(stream, found)
            except (Unreadable, LimitExceeded) as exc:
                found.problems.append(f"{file.path}: {exc}")
        if hf is not None:
            found.architecture = found.architecture or hf.model_type
            found.context_length = found.context_length or hf.context_length
            found.details["config.json"] = {"architectures": hf.architectures, **hf.details}
            if hf.quantization:
                found.quantization, found.bits = hf.quantization, hf.quant_bits or found.bits
            if hf.precision and not found.precisions:  # the weights' own dtypes win over the declared one
                found.precisions = Counter({hf.precision.lower(): 1})
        self._read_docs(reader, files, found)
        found.details.pop("_captured", None)

    def _safetensors(self, stream: Any, hf: hfconfig.HfConfig | None, found: _Found, file: ModelFile) -> None:
        header = safetensors.read_header(
            stream, max_header=self.limits.max_safetensors_header, max_tensors=self.limits.max_tensors
        )
        data_start = stream.tell()
        info = safetensors.summarize(header, bits=hf.quant_bits if hf else None)
        # The tensor index (``GET .../files/{path}/tensors``), bounded over all files since every
        # tensor is a row; a tensor outside the file leaves the file unindexed, not the version opaque.
        try:
            tensors = safetensors.tensor_ranges(header, data_start, file.size)
        except Unreadable as exc:
            found.notes.append(f"{file.path}: no tensor index: {exc}")
        else:
            if found.tensor_count + len(tensors) <= self.limits.max_indexed_tensors:
                found.tensors[file.path] = tensors
                found.tensor_count += len(tensors)
            else:
                found.notes.append(f"{file.path}: tensors past the first {self.limits.max_indexed_tensors} not indexed")
        found.parameters += info.parameters
        found.counted = True
        found.precisions.update(info.precisions)
        found.quantization = found.quantization or info.quantization
        if info.quantization == "gptq":
            found.bits = found.bits or (hf.quant_bits if hf else None) or 4

    def _gguf(self, stream: Any, found: _Found) -> None:
        info = gguf_header.parse(stream, self.limits.gguf)
        found.parameters += info.parameters
        found.counted = True
        found.architecture = found.architecture or info.architecture
        found.name = found.name or info.name
        found.license = found.license or info.license
        found.context_length = found.context_length or info.context_length
        found.quantization = found.quantization or info.quantization
        found.bits = found.bits or info.quant_bits
        if info.precision:
            found.precisions[info.precision] += info.parameters if info.quantization is None else 0
        found.details.setdefault("gguf", {"version": info.version, "tensor_types": info.tensor_types, **info.metadata})

    def _read_docs(self, reader: BlobReader, files: list[ModelFile], found: _Found) -> None:
        docs_found = [f for f in files if f.kind in ("doc", "other", "config")]
        cards = sorted((f for f in docs_found if _CARD.search(f.path)), key=lambda f: (f.path.count("/"), f.path))
        licenses = sorted((f for f in docs_found if _LICENSE.search(f.path)), key=lambda f: f.path.count("/"))
        for file, is_card in ((cards[0] if cards else None, True), (licenses[0] if licenses else None, False)):
            if file is None:
                continue
            try:
                stream = self._open(reader, file, found)
                if stream is None:
                    continue
                raw = stream.read(min(file.size, self.limits.doc_bytes))
            except (Unreadable, LimitExceeded) as exc:
                found.notes.append(f"{file.path}: {exc}")
                continue
            if is_card:
                found.card, declared_license = docs.card_excerpt(raw)
                found.license = found.license or declared_license
            else:
                found.license = found.license or docs.license_of(raw)

    # -- merging ---------------------------------------------------------------------------

    @staticmethod
    def _merge(
        kind: str, declared: dict[str, Any], found: _Found, files: list[ModelFile], total: int, problem: str | None
    ) -> ModelFacts:
        def low(value: Any) -> str | None:
            return value.strip().lower()[:128] if isinstance(value, str) and value.strip() else None

        architecture = low(declared.get("architecture"))
        if found.architecture and (architecture is None or architecture in _GENERIC_ARCHITECTURES):
            architecture = low(found.architecture)
        formats = Counter(
            _FORMATS[suffix]
            for f in files
            if f.kind == "weight" and (suffix := "." + f.path.rsplit(".", 1)[-1].lower()) in _FORMATS
        )
        fmt = low(declared.get("format")) or (formats.most_common(1)[0][0] if formats else None)
        total_params = sum(found.precisions.values()) or 1
        shares = [p for p, n in found.precisions.most_common() if n / total_params >= 0.01]
        precision = low(declared.get("precision")) or (",".join(shares)[:128] if shares else None)
        quantization = low(declared.get("quantization")) or low(found.quantization)
        if quantization in ("", "none", "no"):
            quantization = None
        parameters = found.parameters if found.counted and not found.problems else declared.get("parameters")
        details: dict[str, Any] = {k: v for k, v in found.details.items() if not k.startswith("_")}
        details["declared"] = {k: v for k, v in declared.items() if v not in (None, {}, "") and k != "extras"}
        details.update(declared.get("extras") or {})
        if found.problems:
            details["problems"] = found.problems[:20]
        if found.notes:
            details["notes"] = found.notes[:20]
        if declared.get("family"):
            details["family"] = declared["family"]
        license_id = low(declared.get("license")) or low(found.license)
        return ModelFacts(
            packaging=kind,
            status="opaque" if problem else "indexed",
            reason=problem[:1000] if problem else None,
            format=fmt,
            name=(declared.get("name") or found.name or None),
            architecture=architecture,
            parameters=parameters,
            precision=precision,
            quantization=quantization,
            quant_bits=found.bits or quant_bits(quantization),
            license=license_id,
            context_length=declared.get("context_length") or found.context_length,
            total_size=total,
            file_count=len(files),
            card=found.card or declared.get("description"),
            details=details,
            files=tuple(files),
            tensors=found.tensors,
        )


def is_model_manifest(media_type: str) -> bool:
    return media_type in mediatypes.MANIFESTS
