"""What the registry knows about a model version: the facts extraction found, its files, and the
queries that search them. Plain records (no I/O), shared by ``services/models``, the model
index store and the API; the parameter-count helpers are used by the clients too.

A *version* here is one manifest of a repository (its tags are names for it). Its facts come
from what the registry holds at push time -- the manifest, its config blob, and headers it can
read cheaply (``services/models/``) -- and are ``indexed`` when something was understood,
``opaque`` (with a ``reason`` a person can act on) when the artifact could not be read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["indexed", "opaque"]
FileKind = Literal["weight", "config", "doc", "code", "dataset", "other"]
# How a file sits in its layer: the layer is the file, or a member of a (compressed) tar.
Archive = Literal["raw", "tar", "tar+gzip", "tar+zstd"]

_SCALES = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12, "Q": 10**15}
_PARAMS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbgtq])?\s*$", re.IGNORECASE)


def format_params(count: int | None) -> str | None:
    """``7241732096`` -> ``"7.2B"``, ``124439808`` -> ``"124M"`` (ModelPack's ``paramSize``
    notation: a count with at most one decimal, then K, M, B, T or Q)."""
    if count is None or count < 0:
        return None
    for suffix in ("Q", "T", "B", "M", "K"):
        scale = _SCALES[suffix]
        if count >= scale:
            value = count / scale
            if value >= 100:
                return f"{round(value)}{suffix}"
            shown = math.floor(value * 10 + 0.5) / 10
            text = f"{shown:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return str(count)


def parse_params(text: str) -> int:
    """``"7B"``, ``"6.7b"``, ``"350M"``, ``"1.10 B"``, ``"1000"`` -> a parameter count.

    Raises :class:`ValueError` for anything else (a negative count, an unknown scale)."""
    match = _PARAMS.match(text)
    if match is None:
        raise ValueError(f"not a parameter count: {text!r} (use e.g. 7B, 1.5B, 350M or a plain number)")
    number, suffix = match.groups()
    scale = _SCALES[suffix.upper()] if suffix else 1
    return round(float(number) * scale)


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a version: where its bytes are (a layer, or a member of a tar layer)."""

    path: str
    size: int
    layer_digest: str
    media_type: str
    layer_index: int
    kind: FileKind = "other"
    archive: Archive = "raw"
    # Offset of the file's data in the *uncompressed* tar stream (``None`` for a raw layer).
    member_offset: int | None = None
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """One tensor of a safetensors file: ``[start, end)`` are absolute offsets in the file (past the
    8-byte length and the JSON header), so reading the tensor is one ranged read of the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What extraction found in one manifest (every field optional but the sizes)."""

    packaging: str  # modelpack, modelpack-cnai, docker-model, kitops, image, artifact, index
    status: Status = "indexed"
    reason: str | None = None
    format: str | None = None
    name: str | None = None
    architecture: str | None = None
    parameters: int | None = None
    precision: str | None = None
    quantization: str | None = None
    quant_bits: int | None = None
    license: str | None = None
    context_length: int | None = None
    total_size: int = 0
    file_count: int = 0
    card: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    files: tuple[ModelFile, ...] = ()
    # The tensor index of each safetensors file whose header was read, by file path (file order).
    tensors: dict[str, tuple[TensorEntry, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    """A version as stored: which manifest, its current tags, and its facts (``facts.files`` is
    filled only where the caller asked for files)."""

    id: int
    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    created_at: datetime
    indexed_at: datetime
    facts: ModelFacts


@dataclass(frozen=True, slots=True)
class ModelQuery:
    """A search: every given filter must hold (equality on the normalized, lowercased value;
    ``quant_bits`` matches quantizations of that many bits, e.g. ``int4`` finds ``q4_k_m`` and
    4-bit GPTQ; ``text`` is a prefix of the repository or model name)."""

    architecture: str | None = None
    quantization: str | None = None
    quant_bits: int | None = None
    license: str | None = None
    format: str | None = None
    min_params: int | None = None
    max_params: int | None = None
    text: str | None = None
