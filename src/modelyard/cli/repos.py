"""``modelyard repo …``: create, list, show, update, delete repositories and list their versions."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli.common import (
    JsonOption,
    RegistryOption,
    admin_client,
    emit_fields,
    emit_json,
    emit_table,
    err,
    human_size,
    usage_error,
    validated,
)
from modelyard.schemas import admin as schemas
from modelyard.schemas.models import ModelSummary

repo_app = typer.Typer(help="Manage repositories.")

Public = Annotated[bool | None, typer.Option("--public/--private", help="Readable by anyone (default private).")]
Immutable = Annotated[
    bool | None, typer.Option("--immutable/--mutable", help="Every tag immutable once pushed (default mutable).")
]
ImmutableTags = Annotated[
    list[str] | None, typer.Option("--immutable-tag", help="Glob of immutable tags, e.g. 'v*' (repeatable).")
]
MutableTags = Annotated[
    list[str] | None, typer.Option("--mutable-tag", help="Glob of tags kept mutable, e.g. 'latest' (repeatable).")
]
ReadmeFile = Annotated[
    Path | None, typer.Option("--readme", help="README file (plain text or Markdown).", exists=True, dir_okay=False)
]
ReadmeFormatOption = Annotated[
    str | None, typer.Option("--readme-format", help="TEXT_MARKDOWN (default for .md) or TEXT_PLAIN.")
]
Labels = Annotated[list[str] | None, typer.Option("--label", help="KEY=VALUE label (repeatable).")]
Description = Annotated[str | None, typer.Option(help="One-line description.")]


def _split(name: str) -> tuple[str | None, str]:
    if "/" in name:
        compartment, display_name = name.split("/", 1)
        return compartment, display_name
    return None, name


def _labels(values: list[str] | None) -> dict[str, str] | None:
    if values is None:
        return None
    labels = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise usage_error(f"--label takes KEY=VALUE, not {item!r}")
        labels[key] = value
    return labels


def _readme(path: Path | None, fmt: str | None) -> schemas.Readme | None:
    if path is None:
        return None
    if fmt is None:
        fmt = "TEXT_PLAIN" if path.suffix.lower() in (".txt", "") else "TEXT_MARKDOWN"
    if fmt not in ("TEXT_MARKDOWN", "TEXT_PLAIN"):
        raise usage_error("--readme-format is TEXT_MARKDOWN or TEXT_PLAIN")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise usage_error(f"{path} is not UTF-8 text") from None
    return validated(schemas.Readme, {"content": base64.b64encode(text.encode()).decode(), "format": fmt})


def _show(repo: schemas.Repository) -> None:
    emit_fields(
        repo,
        [
            ("name", repo.name),
            ("url", repo.url),
            ("compartment", repo.compartment_id or "(root)"),
            ("description", repo.description),
            ("visibility", "public" if repo.is_public else "private"),
            ("immutable", "all tags" if repo.is_immutable else (", ".join(repo.immutable_tag_patterns) or "no")),
            ("mutable exceptions", ", ".join(repo.mutable_tag_exclusions)),
            ("labels", ", ".join(f"{k}={v}" for k, v in sorted(repo.labels.items()))),
            ("protected aliases", ", ".join(r.alias for r in repo.protected_aliases)),
            ("promotion gates", ", ".join(g.alias for g in repo.promotion_gates)),
            ("images", repo.image_count),
            ("layers", f"{repo.layer_count} ({human_size(repo.layers_size_in_bytes)})"),
            ("created", repo.time_created.isoformat()),
            ("last pushed", repo.time_last_pushed.isoformat() if repo.time_last_pushed else "never"),
            ("readme", f"{len(repo.readme.text())} characters, {repo.readme.format}" if repo.readme.content else ""),
        ],
    )


@repo_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="compartment/path, e.g. acme/llm (one component: root compartment).")],
    public: Public = None,
    immutable: Immutable = None,
    immutable_tag: ImmutableTags = None,
    mutable_tag: MutableTags = None,
    readme: ReadmeFile = None,
    readme_format: ReadmeFormatOption = None,
    description: Description = None,
    label: Labels = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a repository (its compartment must exist)."""
    compartment, display_name = _split(name)
    spec = validated(
        schemas.RepositoryCreate,
        {
            "compartment_id": compartment,
            "display_name": display_name,
            "description": description or "",
            "is_public": bool(public),
            "is_immutable": bool(immutable),
            "immutable_tag_patterns": immutable_tag or [],
            "mutable_tag_exclusions": mutable_tag or [],
            "readme": _readme(readme, readme_format),
            "labels": _labels(label) or {},
        },
    )
    with admin_client(registry) as client:
        repo = client.create_repository(spec)
        if json_out:
            emit_json(repo)
        else:
            typer.echo(f"created repository {repo.name}; push to {repo.url}")


@repo_app.command("list")
def list_(
    compartment: Annotated[str | None, typer.Option(help="Only this compartment.")] = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Only public or private.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this.")] = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """List repositories."""
    with admin_client(registry) as client:
        items = list(client.iter_repositories(compartment=compartment, is_public=public, name_prefix=prefix))
        if json_out:
            emit_json(items)
        else:
            emit_table(
                items,
                [
                    ("NAME", lambda r: r.name),
                    ("VISIBILITY", lambda r: "public" if r.is_public else "private"),
                    ("IMMUTABLE", lambda r: "all" if r.is_immutable else ",".join(r.immutable_tag_patterns) or "no"),
                    ("IMAGES", lambda r: r.image_count),
                    ("SIZE", lambda r: human_size(r.layers_size_in_bytes)),
                    (
                        "LAST PUSHED",
                        lambda r: r.time_last_pushed.isoformat(timespec="seconds") if r.time_last_pushed else "",
                    ),
                ],
            )


@repo_app.command("show")
def show(
    name: str,
    readme: Annotated[bool, typer.Option("--readme", help="Print the README instead.")] = False,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a repository."""
    with admin_client(registry) as client:
        repo = client.get_repository(name)
        if json_out:
            emit_json(repo)
        elif readme:
            typer.echo(repo.readme.text())
        else:
            _show(repo)


@repo_app.command("update")
def update(
    name: str,
    public: Public = None,
    immutable: Immutable = None,
    immutable_tag: ImmutableTags = None,
    mutable_tag: MutableTags = None,
    readme: ReadmeFile = None,
    readme_format: ReadmeFormatOption = None,
    description: Description = None,
    label: Labels = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a repository's settings (options not given keep their value)."""
    changes: dict[str, object] = {}
    if public is not None:
        changes["is_public"] = public
    if immutable is not None:
        changes["is_immutable"] = immutable
    if immutable_tag is not None:
        changes["immutable_tag_patterns"] = immutable_tag
    if mutable_tag is not None:
        changes["mutable_tag_exclusions"] = mutable_tag
    if readme is not None:
        changes["readme"] = _readme(readme, readme_format)
    if description is not None:
        changes["description"] = description
    if label is not None:
        changes["labels"] = _labels(label)
    if not changes:
        raise usage_error("nothing to change: give at least one option (see --help)")
    spec = validated(schemas.RepositoryUpdate, changes)
    with admin_client(registry) as client:
        repo = client.update_repository(name, spec)
        if json_out:
            emit_json(repo)
        else:
            _show(repo)


@repo_app.command("delete")
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    registry: RegistryOption = None,
) -> None:
    """Delete a repository with its tags and manifests (shared blobs stay until garbage collection)."""
    if not yes and not typer.confirm(f"delete repository {name} and all its tags?"):
        err.print(f"not deleted: {name} is unchanged", highlight=False)
        raise typer.Exit(1)
    with admin_client(registry) as client:
        client.delete_repository(name)
        typer.echo(f"deleted repository {name}")


def _model(version: schemas.Version, field: str) -> object:
    return None if version.model is None else getattr(version.model, field)


def _precision(model: ModelSummary | None) -> str | None:
    """``bfloat16``, ``q4_k_m``, or both as ``float16/gptq``."""
    if model is None:
        return None
    return "/".join(part for part in (model.precision, model.quantization) if part) or None


@repo_app.command("versions")
def versions(name: str, registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List a repository's versions: tags with digest, model format, architecture, parameters,
    precision/quantization, license, size, file count and time."""
    with admin_client(registry) as client:
        items = list(client.iter_versions(name))
        if json_out:
            emit_json(items)
        else:
            emit_table(
                items,
                [
                    ("TAG", lambda v: v.tag),
                    ("DIGEST", lambda v: v.digest[:19]),
                    ("FORMAT", lambda v: _model(v, "format") or (v.artifact_type or v.media_type).rsplit("/", 1)[-1]),
                    ("ARCH", lambda v: _model(v, "architecture")),
                    ("PARAMS", lambda v: _model(v, "parameters_human")),
                    ("PRECISION", lambda v: _precision(v.model)),
                    ("LICENSE", lambda v: _model(v, "license")),
                    ("SIZE", lambda v: human_size(v.model.total_size if v.model else v.size)),
                    ("FILES", lambda v: _model(v, "file_count")),
                    ("IMMUTABLE", lambda v: "yes" if v.immutable else ""),
                    ("TAGGED", lambda v: v.time_tagged.isoformat(timespec="seconds")),
                ],
            )
