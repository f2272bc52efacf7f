"""Small, real test models: a Hugging Face-style directory with safetensors weights written by the
``safetensors`` package (numpy backend, never torch), ``config.json``, ``tokenizer.json``,
``README.md`` with a model card header, and ``LICENSE``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

README = """---
license: apache-2.0
tags: [test]
---
# tiny-llama

A tiny test model.
"""


def write_weights(path: Path, seed: int, rows: int = 64) -> None:
    """A safetensors file of float16 tensors; ``rows`` scales it (64 rows ~ 40 KiB)."""
    rng = np.random.default_rng(seed)
    save_file(
        {
            "model.embed_tokens.weight": rng.standard_normal((rows, 256)).astype(np.float16),
            "model.layers.0.mlp.up_proj.weight": rng.standard_normal((rows, 64)).astype(np.float16),
            "lm_head.bias": np.zeros(rows, dtype=np.float16),
        },
        str(path),
    )


def make_model(directory: Path, *, seed: int = 1, rows: int = 64, extra: bool = False) -> Path:
    """A Hugging Face-style model directory (optionally with code and a dataset too)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_weights(directory / "model.safetensors", seed, rows)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "num_attention_heads": 4,
        "num_hidden_layers": 1, "torch_dtype": "float16", "vocab_size": rows,
    }  # fmt: skip
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer = {"version": "1.0", "model": {"type": "BPE", "vocab": {f"t{i}": i for i in range(rows)}, "merges": []}}
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))
    (directory / "README.md").write_text(README)
    (directory / "LICENSE").write_text(" " * 33 + "Apache License\n   Version 2.0, January 2004\n")
    if extra:
        (directory / "src").mkdir(exist_ok=True)
        (directory / "src" / "modeling.py").write_text("def forward(x):\n    return x\n")
        (directory / "data").mkdir(exist_ok=True)
        (directory / "data" / "eval.csv").write_text("prompt,answer\nhi,hello\n")
    return directory


def tree(directory: Path) -> dict[str, str]:
    """Relative path -> sha256 of every non-hidden file under ``directory``."""
    return {
        path.relative_to(directory).as_posix(): "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    }
