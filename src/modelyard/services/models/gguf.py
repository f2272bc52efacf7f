"""The header of a GGUF file: its key/value metadata and tensor infos, never its tensor data.

A bounded parse with the ``gguf`` package's constants (value types, tensor types, file types)
rather than ``gguf.GGUFReader``: the reader memory-maps a whole local file and builds arrays
for every metadata value, which neither fits a blob store that may not be local nor bounds a
hostile file. Here every count is checked before anything is allocated for it -- a header
claiming 2^60 tensors or a 1 TB string is refused on the spot -- and large arrays (a
tokenizer's vocabulary) are skipped with a seek where their items have a fixed size. The tensor
infos give the parameter count (the sum of the products of their dimensions) and the tensor
types; ``general.file_type`` names the quantization.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelyard.services.models.source import LimitExceeded, Unreadable, read_exact

MAGIC = b"GGUF"
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_BITS = re.compile(r"^(?:I?Q|TQ)(\d)|^(?:MX|NV)FP(\d)")
_FLOATS = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


@dataclass(frozen=True, slots=True)
class GgufLimits:
    max_kv: int = 100_000
    max_tensors: int = 200_000
    max_string: int = 16 * 1024 * 1024
    max_array: int = 16 * 1024 * 1024
    max_dims: int = 8


@dataclass(frozen=True, slots=True)
class GgufInfo:
    version: int
    parameters: int
    tensor_count: int
    architecture: str | None
    name: str | None
    license: str | None
    context_length: int | None
    quantization: str | None
    quant_bits: int | None
    precision: str | None
    tensor_types: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def bits_of(quantization: str | None) -> int | None:
    """``Q4_K_M`` -> 4, ``IQ2_XS`` -> 2, ``Q8_0`` -> 8, ``F16`` -> ``None``."""
    if not quantization:
        return None
    match = _BITS.match(quantization.upper())
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


class _Parser:
    def __init__(self, stream: Any, limits: GgufLimits) -> None:
        self.stream = stream
        self.limits = limits
        self.order = "<"

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        return struct.unpack(self.order + fmt, read_exact(self.stream, size, "GGUF header"))[0]

    def skip(self, count: int) -> None:
        if count:
            self.stream.seek(count, 1)

    def string(self, what: str) -> str:
        length = self.unpack("Q")
        if length > self.limits.max_string:
            raise LimitExceeded(f"GGUF {what} claims {length} bytes, over the {self.limits.max_string} limit")
        return read_exact(self.stream, length, f"GGUF {what}").decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.unpack("Q")
        if length > self.limits.max_string:
            raise LimitExceeded(f"GGUF string claims {length} bytes, over the {self.limits.max_string} limit")
        self.skip(length)

    def value(self, kind: int, key: str) -> Any:
        """A value; arrays come back as ``("array", item type, length)`` and are skipped."""
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string(f"value of {key[:100]}")
        if kind != _ARRAY:
            raise Unreadable(f"GGUF key {key[:100]!r} has unknown value type {kind}")
        item, count = self.unpack("I"), self.unpack("Q")
        if count > self.limits.max_array:
            raise LimitExceeded(
                f"GGUF array {key[:100]!r} claims {count} items, over the {self.limits.max_array} limit"
            )
        if item in _SCALARS:
            self.skip(count * struct.calcsize("<" + _SCALARS[item]))
        elif item == _STRING:
            for _ in range(count):
                self.skip_string()
        else:  # arrays of arrays: legal, rare, and not worth a recursion a file can make deep
            raise Unreadable(f"GGUF array {key[:100]!r} holds items of type {item}, which this registry does not read")
        return ("array", item, count)


def parse(stream: Any, limits: GgufLimits | None = None) -> GgufInfo:
    """Read the header of the GGUF file open as ``stream`` (positioned at 0)."""
    from gguf.constants import GGMLQuantizationType, LlamaFileType  # numpy comes with it: load on use

    limits = limits or GgufLimits()
    if read_exact(stream, 4, "GGUF magic") != MAGIC:
        raise Unreadable("not a GGUF file (bad magic)")
    parser = _Parser(stream, limits)
    version = parser.unpack("I")
    if version & 0xFFFF == 0:  # written big-endian
        parser.order = ">"
        version = struct.unpack(">I", struct.pack("<I", version))[0]
    if version not in (2, 3):
        raise Unreadable(f"GGUF version {version} is not supported (2 and 3 are)")
    tensors, kv_count = parser.unpack("Q"), parser.unpack("Q")
    if tensors > limits.max_tensors:
        raise LimitExceeded(f"GGUF header claims {tensors} tensors, over the {limits.max_tensors} limit")
    if kv_count > limits.max_kv:
        raise LimitExceeded(f"GGUF header claims {kv_count} metadata keys, over the {limits.max_kv} limit")
    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key = parser.string("key")
        meta[key] = parser.value(parser.unpack("I"), key)
    parameters = 0
    types: Counter[str] = Counter()
    for _ in range(tensors):
        name = parser.string("tensor name")
        n_dims = parser.unpack("I")
        if n_dims > limits.max_dims:
            raise Unreadable(f"GGUF tensor {name[:100]!r} claims {n_dims} dimensions")
        count = 1
        for _ in range(n_dims):
            count *= parser.unpack("Q")
        kind = parser.unpack("I")
        parser.unpack("Q")  # the data offset: the data itself is never read
        try:
            type_name = GGMLQuantizationType(kind).name
        except ValueError:
            type_name = f"type{kind}"
        parameters += count
        types[type_name] += count
    return _info(version, parameters, tensors, meta, types, LlamaFileType)


def _text(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    return value[:255] if isinstance(value, str) and value else None


def _info(
    version: int, parameters: int, tensors: int, meta: dict[str, Any], types: Counter[str], file_types: Any
) -> GgufInfo:
    architecture = _text(meta, "general.architecture")
    context = meta.get(f"{architecture}.context_length") if architecture else None
    quantization: str | None = None
    file_type = meta.get("general.file_type")
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        try:
            quantization = file_types(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            quantization = None
    if quantization is None and types:
        quantization = types.most_common(1)[0][0]
    precision = None
    if quantization in _FLOATS:
        precision, quantization = _FLOATS[quantization], None
    else:
        floats = [_FLOATS[t] for t, _ in types.most_common() if t in _FLOATS]
        precision = floats[0] if floats else None
    scalars = {k: v for k, v in meta.items() if not isinstance(v, tuple)}
    shown = {k: (v[:200] if isinstance(v, str) else v) for k, v in list(scalars.items())[:200]}
    return GgufInfo(
        version=version,
        parameters=parameters,
        tensor_count=tensors,
        architecture=architecture,
        name=_text(meta, "general.name"),
        license=_text(meta, "general.license"),
        context_length=context if isinstance(context, int) and not isinstance(context, bool) else None,
        quantization=quantization,
        quant_bits=bits_of(quantization),
        precision=precision,
        tensor_types=dict(types.most_common()),
        metadata=shown,
    )
