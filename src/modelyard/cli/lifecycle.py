"""``modelyard retention …``, ``modelyard quota …`` and ``modelyard usage``.

A target is a repository (``acme/llm``) or, with ``--compartment``, a compartment. Sizes take
units (``500MB``, ``10GiB``, ``2TB``) or plain bytes.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from modelyard.cli.common import (
    JsonOption,
    RegistryOption,
    admin_client,
    emit_fields,
    emit_json,
    emit_table,
    human_size,
    usage_error,
    validated,
)
from modelyard.schemas import lifecycle as schemas

retention_app = typer.Typer(help="Retention policies: what to keep; plan (dry run) and run the rest away.")
quota_app = typer.Typer(help="Quotas on stored bytes per repository or compartment (administrators).")

Repository = Annotated[str | None, typer.Argument(help="Repository, e.g. acme/llm (or give --compartment).")]
Compartment = Annotated[str | None, typer.Option("--compartment", "-c", help="A compartment instead of a repository.")]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise usage_error(f"{text!r} is not a size: use bytes or a unit (500MB, 10GiB, 2TB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _target(repository: str | None, compartment: str | None) -> dict[str, str]:
    if (repository is None) == (compartment is None):
        raise usage_error("name a repository or give --compartment (one of them)")
    return {"repository": repository} if repository is not None else {"compartment": str(compartment)}


def _show_policy(policy: schemas.RetentionPolicy) -> None:
    emit_fields(policy, [
        ("scope", policy.scope),
        ("keep last", policy.keep_last),
        ("keep days", policy.keep_days),
        ("keep tags", ", ".join(policy.keep_tags)),
        ("alias window days", policy.alias_window_days),
        ("updated", f"{policy.updated_at.isoformat() if policy.updated_at else ''} by {policy.updated_by or '?'}"),
    ])  # fmt: skip


@retention_app.command("show")
def show_policy(
    repository: Repository = None, compartment: Compartment = None, registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:  # fmt: skip
    """Show the retention policy of a repository or compartment."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        policy = client.get_retention_policy(**target)
        emit_json(policy) if json_out else _show_policy(policy)


@retention_app.command("set")
def set_policy(
    repository: Repository = None,
    compartment: Compartment = None,
    keep_last: Annotated[int | None, typer.Option(help="Keep the N newest tagged versions.")] = None,
    keep_days: Annotated[float | None, typer.Option(help="Keep versions pushed or pulled within D days.")] = None,
    keep_tag: Annotated[
        list[str] | None, typer.Option(help="Always keep versions with a tag matching (repeat).")
    ] = None,
    alias_window_days: Annotated[
        float, typer.Option(help="Keep what an alias points to, and pointed to within D days.")
    ] = 30.0,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Set (replace) the retention policy of a repository or compartment."""
    target = _target(repository, compartment)
    body = validated(schemas.RetentionPolicyBody, {
        "keep_last": keep_last, "keep_days": keep_days, "keep_tags": keep_tag or [],
        "alias_window_days": alias_window_days,
    })  # fmt: skip
    with admin_client(registry) as client:
        policy = client.set_retention_policy(body, **target)
        emit_json(policy) if json_out else _show_policy(policy)


@retention_app.command("delete")
def delete_policy(
    repository: Repository = None, compartment: Compartment = None, registry: RegistryOption = None
) -> None:
    """Remove a retention policy (nothing is deleted by retention there any more)."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        client.delete_retention_policy(**target)
    typer.echo("retention policy removed")


@retention_app.command("plan")
def plan(
    repository: Repository = None,
    compartment: Compartment = None,
    show_kept: Annotated[bool, typer.Option("--all", help="List kept versions too, with why.")] = False,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Dry run: what retention would delete now and the unique bytes that would free."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        result = client.plan_retention(**target)
    if json_out:
        emit_json(result)
        return
    rows = [v for v in result.versions if show_kept or v.action == "delete"]
    emit_table(rows, [
        ("ACTION", lambda v: v.action), ("REPOSITORY", lambda v: v.repository), ("DIGEST", lambda v: v.digest[:19]),
        ("TAGS", lambda v: ", ".join(v.tags)), ("SIZE", lambda v: human_size(v.size)),
        ("PUSHED", lambda v: v.pushed_at.date().isoformat()),
        ("PULLED", lambda v: v.last_pulled_at.date().isoformat() if v.last_pulled_at else ""),
        ("WHY KEPT", lambda v: "; ".join(v.reasons)),
    ])  # fmt: skip
    typer.echo(
        f"would delete {result.delete_count} manifest(s) in {len(result.repositories)} repository(ies), "
        f"freeing {human_size(result.freed_bytes)} of unique blobs at the next gc"
    )


@retention_app.command("run")
def run(
    repository: Repository = None,
    compartment: Compartment = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run retention now: delete what `retention plan` lists."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        result = client.run_retention(**target)
    if json_out:
        emit_json(result)
        return
    for item in result.deleted:
        typer.echo(f"deleted {item}")
    for item in result.skipped:
        typer.echo(f"kept {item} (it changed since the plan)")
    typer.echo(f"deleted {len(result.deleted)} manifest(s); {human_size(result.freed_bytes)} to free at the next gc")


@retention_app.command("runs")
def runs(
    kind: Annotated[str, typer.Option(help="retention or gc")] = "retention",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Recorded retention (or gc) runs: when, who, what they removed and the bytes freed."""
    if kind not in ("retention", "gc"):
        raise usage_error("--kind is retention or gc")
    with admin_client(registry) as client:
        page = client.list_runs(kind, limit=limit)
    if json_out:
        emit_json(page.items)
        return
    emit_table(page.items, [
        ("ID", lambda r: r.id), ("FINISHED", lambda r: r.finished_at.isoformat(timespec="seconds")),
        ("TRIGGER", lambda r: r.trigger), ("ACTOR", lambda r: r.actor), ("SCOPE", lambda r: r.scope),
        ("REMOVED", lambda r: r.removed), ("FREED", lambda r: human_size(r.freed_bytes)),
    ])  # fmt: skip


def _show_quota(quota: schemas.Quota) -> None:
    emit_fields(quota, [
        ("scope", quota.scope), ("limit", f"{human_size(quota.limit_bytes)} ({quota.limit_bytes} bytes)"),
        ("usage", f"{human_size(quota.usage_bytes)} ({quota.usage_bytes} bytes)"),
        ("updated", f"{quota.updated_at.isoformat() if quota.updated_at else ''} by {quota.updated_by or '?'}"),
    ])  # fmt: skip


@quota_app.command("show")
def show_quota(
    repository: Repository = None, compartment: Compartment = None, registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:  # fmt: skip
    """Show a quota and the usage it is checked against."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        quota = client.get_quota(**target)
        emit_json(quota) if json_out else _show_quota(quota)


@quota_app.command("set")
def set_quota(
    size: Annotated[str, typer.Argument(help="The limit: bytes or with a unit (500MB, 10GiB).")],
    repository: Repository = None,
    compartment: Compartment = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Set the quota of a repository or compartment."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        quota = client.set_quota(parse_size(size), **target)
        emit_json(quota) if json_out else _show_quota(quota)


@quota_app.command("delete")
def delete_quota(
    repository: Repository = None, compartment: Compartment = None, registry: RegistryOption = None
) -> None:
    """Remove a quota."""
    target = _target(repository, compartment)
    with admin_client(registry) as client:
        client.delete_quota(**target)
    typer.echo("quota removed")


def usage(compartment: Compartment = None, registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """Stored bytes per compartment and repository, with quotas.

    CHARGED is what quotas count: each blob once, to the repository that stored it first.
    LOGICAL counts every blob a repository references; EXCLUSIVE only those nothing else holds.
    """
    with admin_client(registry) as client:
        report = client.usage(compartment)
    if json_out:
        emit_json(report)
        return
    columns = [
        ("CHARGED", lambda u: human_size(u.charged_bytes)),
        ("QUOTA", lambda u: "" if u.quota_bytes is None else human_size(u.quota_bytes)),
        ("LOGICAL", lambda u: human_size(u.logical_bytes)), ("EXCLUSIVE", lambda u: human_size(u.exclusive_bytes)),
    ]  # fmt: skip
    if report.compartments:
        emit_table(report.compartments, [("COMPARTMENT", lambda u: u.name), *columns])
    emit_table(report.repositories, [("REPOSITORY", lambda u: u.name), *columns])
