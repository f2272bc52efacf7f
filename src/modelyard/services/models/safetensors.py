"""The header of a safetensors file, read without its tensor data.

The format (documented by the ``safetensors`` project): 8 bytes, a little-endian unsigned
length ``N``; then ``N`` bytes of JSON mapping each tensor name to ``{"dtype", "shape",
"data_offsets"}``, plus an optional ``"__metadata__"`` string map; then the data. Parameters are
the sum over tensors of the product of their shapes. A header longer than the limit (the
``safetensors`` library itself refuses over 100 MB) is refused before a byte of it is read.

Quantized checkpoints pack several values into one integer: GPTQ/AWQ ``qweight`` tensors hold
``32 / bits`` values per int32, and their ``qzeros``, ``scales`` and ``g_idx`` are bookkeeping,
not parameters; counted that way, a 4-bit 7B model still reads as 7B.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.models import TensorEntry
from modelyard.services.models.source import LimitExceeded, Unreadable, read_exact

# safetensors dtype codes -> the ModelPack spec's precision names.
PRECISIONS = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0", "F6_E2M3": "float6_e2m3",
    "F6_E3M2": "float6_e3m2", "F4": "float4", "C64": "complex64",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}  # fmt: skip
_BOOKKEEPING = ("qzeros", "scales", "g_idx", "weight_scale", "input_scale", "weight_zero_point", "SCB")


@dataclass(frozen=True, slots=True)
class SafetensorsInfo:
    parameters: int
    tensor_count: int
    # Parameters per precision name, largest first.
    precisions: dict[str, int] = field(default_factory=dict)
    quantization: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def read_header(stream: Any, *, max_header: int, max_tensors: int) -> dict[str, Any]:
    """The parsed JSON header of the safetensors file open as ``stream`` (positioned at 0)."""
    (length,) = struct.unpack("<Q", read_exact(stream, 8, "safetensors header length"))
    if length > max_header:
        raise LimitExceeded(f"safetensors header claims {length} bytes, over the {max_header} byte limit: not read")
    if length < 2:
        raise Unreadable("safetensors header is empty")
    raw = read_exact(stream, length, "safetensors header")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise Unreadable("safetensors header is not a JSON object")
    if len(header) > max_tensors + 1:
        raise LimitExceeded(f"safetensors header lists {len(header) - 1} tensors, over the {max_tensors} limit")
    return header


def summarize(header: dict[str, Any], *, bits: int | None = None) -> SafetensorsInfo:
    """Parameters, precisions and a quantization guess from a parsed header; ``bits`` is the
    quantization width the model's config declares (GPTQ/AWQ packing)."""
    metadata = header.get("__metadata__")
    per_precision: Counter[str] = Counter()
    total = 0
    count = 0
    packed = False
    scaled = False
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(spec, dict):
            raise Unreadable(f"safetensors tensor {name[:100]!r} is not an object")
        dtype, shape = spec.get("dtype"), spec.get("shape")
        if not isinstance(dtype, str) or not isinstance(shape, list):
            raise Unreadable(f"safetensors tensor {name[:100]!r} lacks a dtype or shape")
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**63 for d in shape):
            raise Unreadable(f"safetensors tensor {name[:100]!r} has an invalid shape")
        count += 1
        leaf = name.rsplit(".", 1)[-1]
        if leaf in _BOOKKEEPING:
            scaled = scaled or leaf in ("weight_scale", "SCB")
            continue
        values = math.prod(shape)
        if leaf == "qweight" and dtype in ("I32", "U32"):
            packed = True
            values *= 32 // (bits or 4)
        total += values
        per_precision[PRECISIONS.get(dtype, dtype.lower())] += values
    quantization = None
    if packed:
        quantization = "gptq"
    elif scaled and any(p.startswith("float8") for p in per_precision):
        quantization = "fp8"
    elif scaled and "int8" in per_precision:
        quantization = "int8"
    return SafetensorsInfo(
        parameters=total,
        tensor_count=count,
        precisions=dict(per_precision.most_common()),
        quantization=quantization,
        metadata={str(k): str(v)[:200] for k, v in list(metadata.items())[:50]} if isinstance(metadata, dict) else {},
    )


def tensor_ranges(header: dict[str, Any], data_start: int, file_size: int) -> tuple[TensorEntry, ...]:
    """Each tensor of a parsed header with its bytes as absolute offsets in the file, in file
    order. ``data_start`` is ``8 + N`` (where the header ends); a tensor whose ``data_offsets``
    are not two ordered integers inside the file is refused (the file would not load either)."""
    entries = []
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(spec, dict):
            raise Unreadable(f"safetensors tensor {name[:100]!r} is not an object")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if not isinstance(dtype, str) or not isinstance(shape, list):
            raise Unreadable(f"safetensors tensor {name[:100]!r} lacks a dtype or shape")
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**63 for d in shape):
            raise Unreadable(f"safetensors tensor {name[:100]!r} has an invalid shape")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
            or data_start + offsets[1] > file_size
        ):
            raise Unreadable(f"safetensors tensor {name[:100]!r} has data_offsets outside the file")
        entries.append(TensorEntry(name, dtype[:32], tuple(shape), data_start + offsets[0], data_start + offsets[1]))
    entries.sort(key=lambda e: (e.start, e.end, e.name))
    return tuple(entries)
