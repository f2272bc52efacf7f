"""A Hugging Face ``config.json``: architecture, context length, dtype and quantization.

``model_type`` (``"llama"``) is the architecture searched on; ``architectures[0]``
(``"LlamaForCausalLM"``) is kept in the details. Multimodal configs nest the language model's
settings under ``text_config``, which is read when the top level lacks them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from modelyard.services.models.source import Unreadable

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


@dataclass(frozen=True, slots=True)
class HfConfig:
    model_type: str | None
    architectures: list[str]
    context_length: int | None
    precision: str | None
    quantization: str | None
    quant_bits: int | None
    details: dict[str, Any] = field(default_factory=dict)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63 else None


def _str(value: Any) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


def parse(raw: bytes) -> HfConfig:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"config.json is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Unreadable("config.json is not a JSON object")
    text = _obj(data.get("text_config"))
    context = next((_int(data.get(k)) for k in _CONTEXT_KEYS if _int(data.get(k))), None)
    if context is None:
        context = next((_int(text.get(k)) for k in _CONTEXT_KEYS if _int(text.get(k))), None)
    architectures = [a[:128] for a in data.get("architectures") or [] if isinstance(a, str)][:8]
    quant = _obj(data.get("quantization_config"))
    method = _str(quant.get("quant_method"))
    bits = _int(quant.get("bits")) or _int(quant.get("w_bit"))
    if quant.get("load_in_4bit") is True:
        bits = 4
    elif quant.get("load_in_8bit") is True:
        bits = bits or 8
    if method == "fp8":
        bits = bits or 8
    model_type = _str(data.get("model_type"))
    return HfConfig(
        model_type=model_type.lower() if model_type else None,
        architectures=architectures,
        context_length=context,
        precision=_str(data.get("torch_dtype")) or _str(data.get("dtype")) or _str(text.get("torch_dtype")),
        quantization=method.lower() if method else None,
        quant_bits=bits,
        details={
            k: data[k]
            for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "transformers_version")
            if isinstance(data.get(k), int | str) and not isinstance(data.get(k), bool)
        },
    )
