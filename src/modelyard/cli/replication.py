"""``modelyard replication target|rule|run|executions``: push replication to other registries
(registry administrators). A target's password is read from ``--password-stdin`` or the
``MODELYARD_REPLICATION_PASSWORD`` variable, never from an argument a process list shows."""

from __future__ import annotations

import os
import sys
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
    human_size,
    usage_error,
    validated,
)
from modelyard.schemas import replication as schemas

replication_app = typer.Typer(help="Push replication: copy repositories to other registries (administrators).")
target_app = typer.Typer(help="Target registries (another modelyard, or any OCI registry).")
rule_app = typer.Typer(help="What goes to a target, and when.")
replication_app.add_typer(target_app, name="target")
replication_app.add_typer(rule_app, name="rule")

PASSWORD_VARIABLE = "MODELYARD_REPLICATION_PASSWORD"
Name = Annotated[str, typer.Argument(help="Its name.")]


@target_app.command("add")
def target_add(
    name: Name,
    url: Annotated[str, typer.Argument(help="The registry's root, e.g. https://registry.example:5000.")],
    username: Annotated[str | None, typer.Option("--username", "-u", help="User name at the target.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify the target's certificate.")] = False,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="A CA bundle (PEM) for the target.")] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a target registry (its password is stored encrypted)."""
    password = sys.stdin.read().strip() if password_stdin else os.environ.get(PASSWORD_VARIABLE)
    if password and not username:
        raise usage_error("a password needs --username")
    ca_pem = ca_file.read_text() if ca_file is not None else None
    spec = validated(schemas.TargetCreate, {
        "name": name, "url": url, "username": username, "password": password or None, "tls_verify": not insecure,
        "ca_pem": ca_pem,
    })  # fmt: skip
    with admin_client(registry) as client:
        target = client.create_replication_target(spec)
    if as_json:
        emit_json(target)
        return
    emit_fields(target, [("name", target.name), ("url", target.url), ("username", target.username)])


@target_app.command("list")
def target_list(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Target registries."""
    with admin_client(registry) as client:
        targets = client.list_replication_targets()
    if as_json:
        emit_json(targets)
        return
    emit_table(targets, [
        ("NAME", lambda t: t.name), ("URL", lambda t: t.url), ("USERNAME", lambda t: t.username or ""),
        ("TLS", lambda t: ("verify" if t.tls_verify else "insecure") + (" +ca" if t.has_ca else "")),
    ])  # fmt: skip


@target_app.command("rm")
def target_rm(name: Name, registry: RegistryOption = None) -> None:
    """Delete a target with its rules and their executions."""
    with admin_client(registry) as client:
        client.delete_replication_target(name)
    typer.echo(f"deleted replication target {name}")


@rule_app.command("add")
def rule_add(
    name: Name,
    target: Annotated[str, typer.Option("--target", "-t", help="The target's name.")],
    repositories: Annotated[str, typer.Option("--repos", "-r", help="Source repositories, a glob (acme/*).")],
    tags: Annotated[str, typer.Option("--tags", help="Tags and aliases, a glob.")] = "*",
    prefix: Annotated[str, typer.Option("--prefix", help="Prepended to repository names on the target.")] = "",
    on_push: Annotated[bool, typer.Option("--on-push/--no-on-push", help="Replicate each push as it happens.")] = True,
    every: Annotated[int | None, typer.Option("--every", help="Also a full pass every N seconds.")] = None,
    mirror_deletes: Annotated[
        bool, typer.Option("--mirror-deletes", help="Delete there what is deleted here.")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a rule: what goes to a target, on push and/or on a schedule."""
    spec = validated(schemas.RuleCreate, {
        "name": name, "target": target, "repositories": repositories, "tags": tags, "destination_prefix": prefix,
        "on_push": on_push, "interval_seconds": every, "mirror_deletes": mirror_deletes, "enabled": not disabled,
    })  # fmt: skip
    with admin_client(registry) as client:
        rule = client.create_replication_rule(spec)
    if as_json:
        emit_json(rule)
        return
    emit_fields(rule, [("name", rule.name), ("target", rule.target), ("repositories", rule.repositories),
                       ("tags", rule.tags)])  # fmt: skip


@rule_app.command("list")
def rule_list(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Replication rules."""
    with admin_client(registry) as client:
        rules = client.list_replication_rules()
    if as_json:
        emit_json(rules)
        return
    emit_table(rules, [
        ("NAME", lambda r: r.name), ("TARGET", lambda r: r.target), ("REPOSITORIES", lambda r: r.repositories),
        ("TAGS", lambda r: r.tags), ("PREFIX", lambda r: r.destination_prefix),
        ("WHEN", lambda r: ", ".join(w for w in ("push" if r.on_push else "",
                                                   f"every {r.interval_seconds}s" if r.interval_seconds else "") if w)),
        ("DELETES", lambda r: "mirrored" if r.mirror_deletes else "kept"), ("ENABLED", lambda r: r.enabled),
    ])  # fmt: skip


def _switch(name: str, enabled: bool, registry: str | None) -> None:
    with admin_client(registry) as client:
        client.enable_replication_rule(name, enabled)
    typer.echo(f"replication rule {name} {'enabled' if enabled else 'disabled'}")


@rule_app.command("enable")
def rule_enable(name: Name, registry: RegistryOption = None) -> None:
    """Switch a rule on."""
    _switch(name, True, registry)


@rule_app.command("disable")
def rule_disable(name: Name, registry: RegistryOption = None) -> None:
    """Switch a rule off: no on-push work, no scheduled pass (a manual run still goes)."""
    _switch(name, False, registry)


@rule_app.command("rm")
def rule_rm(name: Name, registry: RegistryOption = None) -> None:
    """Delete a rule and its executions."""
    with admin_client(registry) as client:
        client.delete_replication_rule(name)
    typer.echo(f"deleted replication rule {name}")


def _execution_fields(e: schemas.Execution) -> list[tuple[str, object]]:
    return [
        ("execution", e.id), ("rule", e.rule), ("trigger", e.trigger), ("status", e.status),
        ("manifests", f"{e.manifests_copied} copied, {e.manifests_skipped} already there"),
        ("blobs", f"{e.blobs_copied} copied, {e.blobs_mounted} mounted, {e.blobs_skipped} already there"),
        ("bytes", human_size(e.bytes_copied)), ("deleted", e.deleted),
        ("duration", f"{e.duration_seconds:.1f} s" if e.duration_seconds is not None else "running"),
        ("error", e.error or ""),
    ]  # fmt: skip


@replication_app.command("run")
def run(
    rule: Name,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the execution ends.")] = True,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """A full pass of a rule now; exits 1 if it failed."""
    with admin_client(registry) as client:
        execution = client.run_replication_rule(rule, wait=wait)
    if as_json:
        emit_json(execution)
    else:
        emit_fields(execution, _execution_fields(execution))
    if execution.status == "failed":
        raise typer.Exit(1)


@replication_app.command("executions")
def executions(
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule's.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Executions: what was copied, how many bytes, how long, errors."""
    if limit < 1:
        raise usage_error("--limit must be at least 1")
    with admin_client(registry) as client:
        items = client.list_replication_executions(rule, limit=limit).items
    if as_json:
        emit_json(items)
        return
    emit_table(items, [
        ("ID", lambda e: e.id), ("RULE", lambda e: e.rule), ("TRIGGER", lambda e: e.trigger),
        ("STATUS", lambda e: e.status), ("MANIFESTS", lambda e: e.manifests_copied),
        ("BLOBS", lambda e: f"{e.blobs_copied}+{e.blobs_mounted}m/{e.blobs_skipped}s"),
        ("BYTES", lambda e: human_size(e.bytes_copied)),
        ("SECONDS", lambda e: f"{e.duration_seconds:.1f}" if e.duration_seconds is not None else "-"),
        ("STARTED", lambda e: e.started_at.isoformat(timespec="seconds")), ("ERROR", lambda e: e.error or ""),
    ])  # fmt: skip
