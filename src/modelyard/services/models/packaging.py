"""Which packaging a manifest is, what its config declares, and what each of its layers holds.

Packagings, by the config's media type (the manifest's ``artifactType`` for ModelPack too):

- ``modelpack``: ``application/vnd.cncf.model.config.v1+json`` (the CNCF ModelPack spec);
  ``modelpack-cnai`` is the same under the older ``application/vnd.cnai.model.*`` names.
- ``docker-model``: ``application/vnd.docker.ai.model.config.*`` (``docker model package``).
- ``kitops``: ``application/vnd.kitops.modelkit.config.v1+json`` (the Kitfile as JSON).
- ``image``: a container image; its labels and the manifest's annotations are read.
- ``artifact``: anything else (``oras push`` of files); layers named by their
  ``org.opencontainers.image.title`` annotation are read like ModelPack files.
"""

from __future__ import annotations

import json
import re
from typing import Any

from modelyard.domain import mediatypes
from modelyard.domain.models import Archive, FileKind, parse_params
from modelyard.services.models.source import Unreadable

MODELPACK_PREFIXES = {"application/vnd.cncf.model.": "modelpack", "application/vnd.cnai.model.": "modelpack-cnai"}
DOCKER_MODEL_CONFIG = "application/vnd.docker.ai.model.config"
KITOPS_PREFIX = "application/vnd.kitops.modelkit."
FILEPATH_ANNOTATIONS = ("org.cncf.model.filepath", "org.cnai.model.filepath", "org.opencontainers.image.title")
_MODEL_KIND = re.compile(r"\.(weight\.config|weight|doc|code|dataset)\.v\d")
_KIT_KIND = re.compile(r"^application/vnd\.kitops\.modelkit\.(\w+)\.v\d")
_KINDS: dict[str, FileKind] = {
    "weight": "weight", "weight.config": "config", "doc": "doc", "docs": "doc", "code": "code",
    "dataset": "dataset", "model": "weight", "modelpart": "weight", "config": "config", "prompts": "other",
}  # fmt: skip
_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".onnx", ".h5", ".ckpt", ".pb", ".tflite", ".npz")
_CONFIG_NAMES = re.compile(r"(^|/)(config|generation_config|tokenizer|tokenizer_config|special_tokens_map)\.json$")
_DOC_NAMES = re.compile(r"(^|/)(readme|license|licence|notice|model_card|modelcard)(\.[a-z]+)?$", re.I)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def packaging_of(config_type: str | None, artifact_type: str | None) -> str:
    for candidate in (config_type or "", artifact_type or ""):
        for prefix, name in MODELPACK_PREFIXES.items():
            if candidate.startswith(prefix):
                return name
        if candidate.startswith(DOCKER_MODEL_CONFIG):
            return "docker-model"
        if candidate.startswith(KITOPS_PREFIX):
            return "kitops"
    if config_type in mediatypes.IMAGE_CONFIGS:
        return "image"
    return "artifact"


def archive_of(media_type: str) -> Archive:
    """How a layer of this media type holds its files (a tar is read by its members)."""
    lowered = media_type.lower()
    if lowered.endswith(("tar+gzip", "tar.gzip", "tar+gz")):
        return "tar+gzip"
    if lowered.endswith(("tar+zstd", "tar.zstd")):
        return "tar+zstd"
    if lowered.endswith(".tar"):
        return "tar"
    return "raw"


def kind_of(media_type: str, path: str) -> FileKind:
    """What a file is, from its layer's media type, else from its name."""
    match = _MODEL_KIND.search(media_type) or _KIT_KIND.match(media_type)
    if match is not None and match.group(1) in _KINDS:
        kind = _KINDS[match.group(1)]
        if kind != "weight" or not _CONFIG_NAMES.search(path):
            return kind
    if media_type.startswith("application/vnd.docker.ai."):
        return "doc" if "license" in media_type else "weight"
    if path.lower().endswith(_WEIGHT_SUFFIXES):
        return "weight"
    if _CONFIG_NAMES.search(path) or path.lower().endswith((".json", ".model", ".txt", ".jinja")):
        return "doc" if _DOC_NAMES.search(path) else "config"
    if _DOC_NAMES.search(path) or path.lower().endswith(".md"):
        return "doc"
    if path.lower().endswith((".py", ".sh", ".ipynb")):
        return "code"
    return "other"


def load_json(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Unreadable(f"{what} is not a JSON object")
    return data


def _text(value: Any, limit: int = 255) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else None


def _params(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    if isinstance(value, str):
        try:
            return parse_params(value)
        except ValueError:
            return None
    return None


def _licenses(value: Any) -> str | None:
    if isinstance(value, list):
        names = [v.strip() for v in value if isinstance(v, str) and v.strip()]
        return ",".join(names)[:255] if names else None
    return _text(value)


def modelpack(config: dict[str, Any]) -> dict[str, Any]:
    """The ModelPack config's declared facts (``descriptor`` and ``config`` of config.md)."""
    descriptor = _obj(config.get("descriptor"))
    model = _obj(config.get("config"))
    declared: dict[str, Any] = {
        "name": _text(descriptor.get("title")) or _text(descriptor.get("name")),
        "family": _text(descriptor.get("family")),
        "architecture": _text(model.get("architecture")),
        "format": _text(model.get("format")),
        "parameters": _params(model.get("paramSize")),
        "precision": _text(model.get("precision")),
        "quantization": _text(model.get("quantization")),
        "license": _licenses(descriptor.get("licenses")),
        "description": _text(descriptor.get("description"), 2000),
    }
    extras = {
        k: descriptor[k]
        for k in ("name", "version", "vendor", "revision", "createdAt", "docURL", "sourceURL", "authors")
        if isinstance(descriptor.get(k), str | list)
    }
    if isinstance(model.get("capabilities"), dict):
        extras["capabilities"] = model["capabilities"]
    declared["extras"] = extras if len(json.dumps(extras)) <= 20000 else {}
    return declared


def docker_model(config: dict[str, Any]) -> dict[str, Any]:
    """``docker model package``'s config: ``config.{format, quantization, parameters,
    architecture, size, context_size}``, some of them also under ``config.gguf``."""
    model = _obj(config.get("config"))
    gguf = _obj(model.get("gguf"))
    return {
        "format": _text(model.get("format")),
        "architecture": _text(model.get("architecture")) or _text(gguf.get("architecture"))
        or _text(gguf.get("general.architecture")),
        "parameters": _params(model.get("parameters")) or _params(gguf.get("parameter_count"))
        or _params(gguf.get("general.parameter_count")),
        "quantization": _text(model.get("quantization")) or _text(gguf.get("quantization")),
        "context_length": _params(model.get("context_size")),
        "extras": {k: model[k] for k in ("size", "format_version") if isinstance(model.get(k), str | int)},
    }  # fmt: skip


def kitops(config: dict[str, Any]) -> dict[str, Any]:
    """A Kitfile: ``package.{name, license, description}``, ``model.{name, framework, license,
    parameters}``."""
    package = _obj(config.get("package"))
    model = _obj(config.get("model"))
    parameters = _obj(model.get("parameters"))
    return {
        "name": _text(model.get("name")) or _text(package.get("name")),
        "format": _text(model.get("format")) or _text(model.get("framework")),
        "license": _text(model.get("license")) or _text(package.get("license")),
        "architecture": _text(parameters.get("architecture")),
        "parameters": _params(parameters.get("paramSize")) or _params(parameters.get("parameters")),
        "quantization": _text(parameters.get("quantization")),
        "description": _text(package.get("description"), 2000) or _text(model.get("description"), 2000),
        "extras": {k: package[k] for k in ("version", "authors") if isinstance(package.get(k), str | list)},
    }


def image(config: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    """A container image: OCI annotations of the manifest, else the config's labels."""
    inner = _obj(config.get("config"))
    labels = _obj(inner.get("Labels"))
    merged = {str(k): str(v) for k, v in labels.items()} | annotations
    return {
        "name": _text(merged.get("org.opencontainers.image.title")),
        "license": _text(merged.get("org.opencontainers.image.licenses")),
        "description": _text(merged.get("org.opencontainers.image.description"), 2000),
        "extras": {"labels": {k[:200]: v[:500] for k, v in list(merged.items())[:100]}} if merged else {},
    }
