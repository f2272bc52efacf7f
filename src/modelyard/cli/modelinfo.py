"""``modelyard model show REPO:REF`` and ``modelyard search``: what the registry understood of
model versions (format, architecture, parameters, precision, quantization, license, files, the
model card's first lines), and search across the repositories you may read."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.common import (
    JsonOption,
    RegistryOption,
    admin_client,
    emit_json,
    emit_table,
    human_size,
    usage_error,
)
from modelyard.domain.models import parse_params
from modelyard.schemas import models as schemas

model_app = typer.Typer(help="Model versions: what the registry knows of them.")


def split_reference(value: str) -> tuple[str, str]:
    """``acme/llm:v1`` -> (``acme/llm``, ``v1``); ``acme/llm@sha256:…`` -> (``acme/llm``, digest)."""
    if "@" in value:
        name, _, reference = value.partition("@")
    else:
        name, _, reference = value.rpartition(":")
        if not name or "/" in reference:
            name, reference = value, "latest"
    if not name or not reference:
        raise usage_error(f"expected REPO:TAG or REPO@DIGEST, not {value!r}")
    return name, reference


def quant_text(item: schemas.ModelSummary) -> str:
    if item.quantization and item.quant_bits:
        return f"{item.quantization} ({item.quant_bits}-bit)"
    return item.quantization or ""


def facts_lines(item: schemas.ModelVersion) -> list[tuple[str, object]]:
    return [
        ("version", f"{item.repository}@{item.digest}"),
        ("tags", ", ".join(item.tags)),
        ("packaging", item.packaging),
        ("status", item.status + (f": {item.reason}" if item.reason else "")),
        ("name", item.name),
        ("format", item.format),
        ("architecture", item.architecture),
        ("parameters", f"{item.parameters_human} ({item.parameters:,})" if item.parameters is not None else None),
        ("precision", item.precision),
        ("quantization", quant_text(item)),
        ("license", item.license),
        ("context length", f"{item.context_length:,}" if item.context_length else None),
        ("size", f"{human_size(item.total_size)} in {item.file_count} file(s)"),
        ("pushed", item.time_created.isoformat(timespec="seconds")),
    ]


@model_app.command("show")
def show(
    reference: Annotated[str, typer.Argument(help="REPO:TAG or REPO@DIGEST, e.g. acme/llm:v1.")],
    files: Annotated[bool, typer.Option("--files/--no-files", help="List the files.")] = True,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a version: model facts, the model card's first lines and the file list."""
    name, ref = split_reference(reference)
    with admin_client(registry) as client:
        item = client.get_model_version(name, ref)
    if json_out:
        emit_json(item)
        return
    lines = facts_lines(item)
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        if value not in (None, ""):
            typer.echo(f"{label.ljust(width)}  {value}")
    if item.card:
        typer.echo("\nmodel card:")
        for line in item.card.splitlines():
            typer.echo(f"  {line}")
    if files and item.files:
        typer.echo("")
        emit_table(
            item.files,
            [
                ("PATH", lambda f: f.path),
                ("SIZE", lambda f: human_size(f.size)),
                ("KIND", lambda f: f.kind),
                ("DIGEST", lambda f: f.digest[:19]),
                ("MEDIA TYPE", lambda f: f.media_type + ("" if f.archive == "raw" else f" [{f.archive}]")),
            ],
        )


def _count(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_params(value)
    except ValueError as exc:
        raise usage_error(f"{option}: {exc}") from None
    return value


def search(
    arch: Annotated[str | None, typer.Option("--arch", help="Architecture, e.g. llama.")] = None,
    quantization: Annotated[
        str | None, typer.Option(help="A quantization (q4_k_m, gptq, awq) or a width (int4, 8bit).")
    ] = None,
    license_: Annotated[str | None, typer.Option("--license", help="SPDX id, e.g. apache-2.0.")] = None,
    min_params: Annotated[str | None, typer.Option("--min-params", help="At least this many: 1B, 350M, ...")] = None,
    max_params: Annotated[str | None, typer.Option("--max-params", help="At most this many.")] = None,
    format_: Annotated[str | None, typer.Option("--format", help="safetensors, gguf, onnx, ...")] = None,
    name: Annotated[str | None, typer.Option("--name", "-q", help="A prefix of the repository or model name.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Search model versions in the repositories you may read (newest first)."""
    filters = {
        "arch": arch, "quantization": quantization, "license": license_, "format": format_, "q": name,
        "min_params": _count("--min-params", min_params), "max_params": _count("--max-params", max_params),
    }  # fmt: skip
    with admin_client(registry) as client:
        items: list[schemas.ModelSearchResult] = []
        for item in client.iter_models(**filters):
            items.append(item)
            if len(items) >= limit:
                break
    if json_out:
        emit_json(items)
        return
    emit_table(
        items,
        [
            ("REPOSITORY", lambda i: i.repository),
            ("TAGS", lambda i: ",".join(i.tags) or i.digest[:19]),
            ("FORMAT", lambda i: i.format),
            ("ARCH", lambda i: i.architecture),
            ("PARAMS", lambda i: i.parameters_human),
            ("PRECISION", lambda i: i.precision),
            ("QUANT", quant_text),
            ("LICENSE", lambda i: i.license),
            ("SIZE", lambda i: human_size(i.total_size)),
        ],
    )
