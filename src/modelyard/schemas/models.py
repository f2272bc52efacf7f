"""The admin API's models of model versions: what a version is (format, architecture,
parameters, precision, quantization, license, sizes), its files, and search results.

Shared by the server and ``modelyard.client`` like ``schemas/admin.py``. ``parameters`` is the
exact count; ``parameters_human`` the same as ModelPack writes a ``paramSize`` (``"7.2B"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSummary(_Model):
    """What the registry understood of a version (every field may be unknown but the sizes)."""

    packaging: str = Field(description="modelpack, modelpack-cnai, docker-model, kitops, image, artifact or index.")
    status: Literal["indexed", "opaque"] = Field(
        description="opaque: the registry could not read the artifact; reason says why."
    )
    reason: str | None = None
    format: str | None = Field(None, description="safetensors, gguf, onnx, pt, ...")
    name: str | None = None
    architecture: str | None = Field(None, description="e.g. llama (lowercase).")
    parameters: int | None = Field(None, description="The parameter count.")
    parameters_human: str | None = Field(None, description='The count as ModelPack writes it, e.g. "7.2B".')
    precision: str | None = Field(None, description="e.g. bfloat16; several separated by commas.")
    quantization: str | None = Field(None, description="e.g. q4_k_m, gptq, awq (lowercase).")
    quant_bits: int | None = Field(None, description="Bits per quantized weight, when known.")
    license: str | None = Field(None, description="SPDX identifier(s), lowercase.")
    context_length: int | None = None
    total_size: int = Field(description="Bytes of all layers.")
    file_count: int


class ModelFileInfo(_Model):
    """One file of a version."""

    path: str
    size: int
    digest: str = Field(description="The digest of the layer holding the file (its ETag when downloaded).")
    media_type: str = Field(description="The layer's media type.")
    kind: str = Field(description="weight, config, doc, code, dataset or other.")
    archive: Literal["raw", "tar", "tar+gzip", "tar+zstd"] = Field(
        description="raw: the layer is the file; otherwise the file is a member of a (compressed) tar layer."
    )
    layer_index: int


class ModelFileList(_Model):
    items: list[ModelFileInfo]


class ModelVersion(ModelSummary):
    """Everything about one version: its facts, tags, the model card's first lines, files."""

    repository: str
    digest: str
    media_type: str
    tags: list[str]
    time_created: datetime
    time_indexed: datetime
    card: str | None = Field(None, description="The model card's (README's) first lines.")
    details: dict[str, JsonValue] = Field(
        default_factory=dict, description="What else was read: declared values, config.json, GGUF metadata, notes."
    )
    files: list[ModelFileInfo]


class ModelSearchResult(ModelSummary):
    repository: str
    digest: str
    tags: list[str]
    time_created: datetime


class ModelSearchPage(_Model):
    items: list[ModelSearchResult]
    next_page: str | None = Field(description="Pass as ?page= for the next page; null on the last.")
