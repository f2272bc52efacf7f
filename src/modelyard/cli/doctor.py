"""``modelyard doctor``: check the configured database and blob store, one line per finding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli.gc import _settings_or_exit


def doctor(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory [default: ./modelyard-data].")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file, as for serve.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Metadata database URL, as for serve.")] = None,
) -> None:
    """Check what `serve` would use: database (reachable, writable, schema version, clock) and
    blob store (reachable, writable, one writer per upload, clock). Exit status 1 if anything fails."""
    from modelyard.doctor import run_checks

    settings = _settings_or_exit(config, data_dir, database_url)
    checks = run_checks(settings)
    for check in checks:
        typer.echo(check.line())
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
