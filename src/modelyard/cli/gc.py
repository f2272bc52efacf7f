"""Maintenance commands run against the data directory and database directly, on the server's
machine: ``modelyard gc`` (garbage collection) and ``modelyard reset-admin`` (recovery)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import pydantic
import typer

from modelyard.cli.common import human_size
from modelyard.config import Settings, format_validation_error, load_settings


def _settings_or_exit(config: Path | None, data_dir: Path | None, database_url: str | None) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, database_url=database_url)
    except pydantic.ValidationError as exc:
        typer.echo(f"modelyard: {format_validation_error(exc)}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"modelyard: {exc}", err=True)
        raise typer.Exit(2) from None


def gc(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory [default: ./modelyard-data].")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file, as for serve.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Metadata database URL, as for serve.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be removed.")] = False,
    grace_period: Annotated[
        int, typer.Option(help="Seconds: nothing touched more recently is removed (protects running pushes).")
    ] = 3600,
    upload_ttl: Annotated[int, typer.Option(help="Seconds after which an idle upload session expires.")] = 7 * 86400,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Remove blobs no manifest refers to, expired uploads and orphaned files.

    Safe beside a running registry: anything newer than --grace-period stays.
    """
    from modelyard.bootstrap import build_registry

    if grace_period < 60:
        typer.echo("modelyard: --grace-period must be at least 60 seconds", err=True)
        raise typer.Exit(2)
    settings = _settings_or_exit(config, data_dir, database_url)
    runtime = build_registry(settings)
    try:
        # Recorded as a maintenance run (GET /api/v1/gc/runs, modelyard runs --kind gc); a dry run is not.
        report, _run = runtime.registry.lifecycle.maintenance.collect_garbage(
            grace=timedelta(seconds=grace_period), upload_ttl=timedelta(seconds=upload_ttl), dry_run=dry_run,
            trigger="cli",
        )  # fmt: skip
    finally:
        runtime.close()
    if json_out:
        typer.echo(json.dumps({
            "dry_run": report.dry_run, "blobs": report.blobs, "orphan_files": report.orphan_files,
            "uploads": report.uploads, "freed_bytes": report.freed_bytes,
        }, indent=2))  # fmt: skip
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {len(report.blobs)} unreferenced blob(s), {len(report.orphan_files)} orphaned file(s) and "
        f"{len(report.uploads)} expired upload(s): {human_size(report.freed_bytes)}"
    )


def reset_admin(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory [default: ./modelyard-data].")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file, as for serve.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Metadata database URL, as for serve.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Recovery: set user 'admin''s password and give it the admin role again.

    Runs on the server's machine against its data directory or database, for when every
    administrator is locked out.
    """
    import asyncio
    import sys

    from modelyard.bootstrap import build_registry
    from modelyard.domain.errors import RegistryError

    settings = _settings_or_exit(config, data_dir, database_url)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("New password", hide_input=True)
    runtime = build_registry(settings)

    async def run() -> None:
        try:
            await runtime.registry.identity.reset_admin(password)
        finally:
            runtime.close()

    try:
        asyncio.run(run())
    except RegistryError as exc:
        typer.echo(f"modelyard: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo("user admin has the new password and the admin role")
