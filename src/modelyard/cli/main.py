"""``modelyard``: serve the registry (and, as the project grows, manage it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pydantic
import typer

from modelyard import __version__
from modelyard.cli import aliases, identity, modelinfo, models
from modelyard.cli import doctor as doctor_command
from modelyard.cli import gc as gc_command
from modelyard.cli import lineage as lineage_commands
from modelyard.cli.compartments import compartment_app, config_app
from modelyard.cli.lifecycle import quota_app, retention_app, usage
from modelyard.cli.proxies import proxy_app
from modelyard.cli.replication import replication_app
from modelyard.cli.repos import repo_app
from modelyard.cli.webhooks import webhook_app
from modelyard.config import format_validation_error, load_settings

app = typer.Typer(
    name="modelyard",
    help="A self-hosted OCI registry for versioning AI model containers and artifacts.",
    no_args_is_help=True,
    add_completion=False,
)


app.add_typer(compartment_app, name="compartment")
app.add_typer(repo_app, name="repo")
app.add_typer(config_app, name="config")
app.add_typer(identity.user_app, name="user")
app.add_typer(identity.sa_app, name="sa")
app.add_typer(identity.group_app, name="group")
app.add_typer(identity.iam_app, name="iam")
app.command("login")(identity.login)
app.command("logout")(identity.logout)
app.command("whoami")(identity.whoami)
app.command("audit")(identity.audit)
app.command("push")(models.push)
app.command("pull")(models.pull)
app.add_typer(modelinfo.model_app, name="model")
app.command("search")(modelinfo.search)
app.command("lineage")(lineage_commands.lineage)
app.command("diff")(lineage_commands.diff)
app.add_typer(aliases.alias_app, name="alias")
app.command("rollback")(aliases.rollback)
app.command("gc")(gc_command.gc)
app.add_typer(retention_app, name="retention")
app.add_typer(quota_app, name="quota")
app.command("usage")(usage)
app.command("reset-admin")(gc_command.reset_admin)
app.command("doctor")(doctor_command.doctor)
app.add_typer(webhook_app, name="webhook")
app.add_typer(proxy_app, name="proxy")
app.add_typer(replication_app, name="replication")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """modelyard command line."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port [default: 5000].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory [default: ./modelyard-data].")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file (env vars and flags override it).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Metadata database URL (sqlite:// or postgresql://).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes sharing the port.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    access_log: Annotated[bool | None, typer.Option("--access-log/--no-access-log", help="Log each request.")] = None,
    auth: Annotated[
        bool | None,
        typer.Option("--auth/--no-auth", help="Require credentials (default on; off only on a trusted network)."),
    ] = None,
) -> None:
    """Start the registry (SQLite + local files under the data directory by default)."""
    from modelyard.server import ServeError, run

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            workers=workers,
            tls_cert=tls_cert,
            tls_key=tls_key,
            access_log=access_log,
            auth_enabled=auth,
        )
    except pydantic.ValidationError as exc:
        typer.echo(f"modelyard: {format_validation_error(exc)}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"modelyard: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        run(settings)
    except ServeError as exc:
        typer.echo(f"modelyard: {exc}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    app()
