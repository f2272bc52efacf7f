"""``modelyard lineage REPO:REF`` and ``modelyard diff REPO:A REPO:B``: where a version comes from
and what derives from it, and what changed between two versions (possibly of two
repositories). Both show only what you may read."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import typer

from modelyard.cli.common import JsonOption, RegistryOption, admin_client, emit_json, human_size
from modelyard.cli.modelinfo import split_reference
from modelyard.schemas import lineage as schemas


def _label(node: schemas.LineageNode) -> str:
    text = f"{node.repository}@{node.digest[:19]}"
    if node.tags:
        text += f" ({', '.join(node.tags)})"
    if not node.present:
        return text + "  [not in the registry]"
    facts = []
    if node.model is not None:
        facts = [v for v in (node.model.architecture, node.model.parameters_human, node.model.format) if v]
    elif node.artifact_type:
        facts = [node.artifact_type]
    return text + (f"  [{' '.join(facts)}]" if facts else "")


def _tree(
    start: str, links: dict[str, list[tuple[str, str]]], nodes: dict[str, schemas.LineageNode], arrow: str
) -> list[str]:
    lines: list[str] = []
    shown: set[str] = set()

    def walk(key: str, depth: int) -> None:
        for other, relation in links.get(key, []):
            node = nodes.get(other)
            if node is None:
                continue
            again = other in shown
            lines.append(f"{'  ' * depth}{arrow} {relation:<7} {_label(node)}{'  (above)' if again else ''}")
            if not again:
                shown.add(other)
                walk(other, depth + 1)

    walk(start, 1)
    return lines


def lineage(
    reference: Annotated[str, typer.Argument(help="REPO:TAG or REPO@DIGEST, e.g. acme/llm-ft:v2.")],
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show what a version derives from and what derives from it (across repositories you may read)."""
    name, ref = split_reference(reference)
    with admin_client(registry) as client:
        found = client.get_lineage(name, ref)
    if json_out:
        emit_json(found)
        return
    nodes = {f"{n.repository}@{n.digest}": n for n in (found.version, *found.ancestors, *found.descendants)}
    parents: dict[str, list[tuple[str, str]]] = defaultdict(list)
    children: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for edge in found.edges:
        parents[edge.child].append((edge.parent, edge.relation))
        children[edge.parent].append((edge.child, edge.relation))
    root = f"{found.version.repository}@{found.version.digest}"
    typer.echo(_label(found.version))
    up = _tree(root, parents, nodes, "derives from")
    down = _tree(root, children, nodes, "derived by ")
    typer.echo("ancestors:" if up else "ancestors: none you can see")
    for line in up:
        typer.echo(line)
    typer.echo("descendants:" if down else "descendants: none you can see")
    for line in down:
        typer.echo(line)
    if found.truncated:
        typer.echo("(the registry stopped at its depth or size bound: there is more)")


def _show(value: object) -> str:
    return "-" if value is None else str(value)


def diff(
    a: Annotated[str, typer.Argument(help="The older version, REPO:TAG or REPO@DIGEST.")],
    b: Annotated[str, typer.Argument(help="The newer version (may be in another repository).")],
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show what changed from version A to version B: files, metadata, and the bytes they share."""
    a_name, a_ref = split_reference(a)
    b_name, b_ref = split_reference(b)
    with admin_client(registry) as client:
        found = client.diff_versions(a_name, a_ref, b_ref, other_repository=b_name)
    if json_out:
        emit_json(found)
        return
    typer.echo(f"a  {found.a.repository}@{found.a.digest}  {human_size(found.a.size)}")
    typer.echo(f"b  {found.b.repository}@{found.b.digest}  {human_size(found.b.size)}")
    typer.echo(
        f"files: {len(found.added)} added, {len(found.removed)} removed, {len(found.changed)} changed, "
        f"{found.unchanged} unchanged"
    )
    for entry in found.added:
        typer.echo(f"  + {entry.path}  {human_size(entry.size)}")
    for entry in found.removed:
        typer.echo(f"  - {entry.path}  {human_size(entry.size)}")
    for change in found.changed:
        typer.echo(f"  ~ {change.path}  {human_size(change.old_size)} -> {human_size(change.new_size)}")
    if found.metadata or found.annotations:
        typer.echo("metadata:")
        for field in (*found.metadata, *found.annotations):
            typer.echo(f"  {field.field}: {_show(field.old)} -> {_show(field.new)}")
    else:
        typer.echo("metadata: unchanged")
    typer.echo(f"shared: {human_size(found.shared_bytes)}; new in b: {human_size(found.changed_bytes)}")
