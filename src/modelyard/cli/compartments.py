"""``modelyard compartment …`` and ``modelyard config …`` (create-on-first-push settings)."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.cli.common import (
    JsonOption,
    RegistryOption,
    admin_client,
    emit_fields,
    emit_json,
    emit_table,
    usage_error,
    validated,
)
from modelyard.schemas import admin as schemas

compartment_app = typer.Typer(help="Manage compartments (the first path component of repositories).")
config_app = typer.Typer(help="Registry-level configuration.")

FirstPush = Annotated[
    bool | None,
    typer.Option(
        "--create-on-first-push/--no-create-on-first-push",
        help="Create repositories on first push (default: inherit the registry setting).",
    ),
]


def _show(compartment: schemas.Compartment, config: schemas.CompartmentConfigurationView) -> None:
    inherited = " (inherited)" if config.is_repository_created_on_first_push is None else ""
    emit_fields(
        compartment,
        [
            ("name", compartment.name),
            ("description", compartment.description),
            ("repositories", compartment.repository_count),
            ("create on first push", f"{config.effective_is_repository_created_on_first_push}{inherited}"),
            ("created", compartment.time_created.isoformat()),
            ("updated", compartment.time_updated.isoformat()),
        ],
    )


@compartment_app.command("create")
def create(
    name: str,
    description: Annotated[str, typer.Option(help="What the compartment holds.")] = "",
    create_on_first_push: FirstPush = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a compartment."""
    with admin_client(registry) as client:
        spec = validated(
            schemas.CompartmentCreate,
            {"name": name, "description": description, "is_repository_created_on_first_push": create_on_first_push},
        )
        created = client.create_compartment(spec)
        if json_out:
            emit_json(created)
        else:
            typer.echo(f"created compartment {created.name}")


@compartment_app.command("list")
def list_(registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List compartments."""
    with admin_client(registry) as client:
        items = list(client.iter_compartments())
        if json_out:
            emit_json(items)
        else:
            emit_table(
                items,
                [("NAME", lambda c: c.name), ("REPOSITORIES", lambda c: c.repository_count),
                 ("DESCRIPTION", lambda c: c.description)],
            )  # fmt: skip


@compartment_app.command("show")
def show(name: str, registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """Show a compartment and its configuration."""
    with admin_client(registry) as client:
        compartment = client.get_compartment(name)
        config = client.get_compartment_configuration(name)
        if json_out:
            typer.echo(_combined_json(compartment, config))
        else:
            _show(compartment, config)


def _combined_json(compartment: schemas.Compartment, config: schemas.CompartmentConfigurationView) -> str:
    import json

    return json.dumps(
        {**compartment.model_dump(mode="json"), "configuration": config.model_dump(mode="json")}, indent=2
    )


@compartment_app.command("update")
def update(
    name: str,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    create_on_first_push: FirstPush = None,
    inherit: Annotated[bool, typer.Option("--inherit-first-push", help="Use the registry default again.")] = False,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a compartment's description or configuration."""
    if description is None and create_on_first_push is None and not inherit:
        raise usage_error("nothing to change: give at least one option (see --help)")
    with admin_client(registry) as client:
        if description is not None:
            client.update_compartment(name, validated(schemas.CompartmentUpdate, {"description": description}))
        if create_on_first_push is not None or inherit:
            client.set_compartment_configuration(
                name, schemas.CompartmentConfiguration(is_repository_created_on_first_push=create_on_first_push)
            )
        compartment = client.get_compartment(name)
        config = client.get_compartment_configuration(name)
        if json_out:
            typer.echo(_combined_json(compartment, config))
        else:
            _show(compartment, config)


@compartment_app.command("delete")
def delete(name: str, registry: RegistryOption = None) -> None:
    """Delete an empty compartment."""
    with admin_client(registry) as client:
        client.delete_compartment(name)
        typer.echo(f"deleted compartment {name}")


@config_app.command("show")
def config_show(registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """Show the registry-level configuration."""
    with admin_client(registry) as client:
        config = client.get_configuration()
        if json_out:
            emit_json(config)
        else:
            emit_fields(
                config,
                [
                    ("create repository on first push", config.is_repository_created_on_first_push),
                    ("create compartment on first push", config.is_compartment_created_on_first_push),
                ],
            )


@config_app.command("set")
def config_set(
    create_on_first_push: Annotated[
        bool | None, typer.Option("--create-on-first-push/--no-create-on-first-push", help="Registry default.")
    ] = None,
    create_compartment: Annotated[
        bool | None,
        typer.Option(
            "--create-compartment-on-first-push/--no-create-compartment-on-first-push",
            help="Whether a push may create a compartment.",
        ),
    ] = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change the registry-level configuration (unset options keep their value)."""
    with admin_client(registry) as client:
        current = client.get_configuration()
        updated = client.set_configuration(
            schemas.RegistryConfiguration(
                is_repository_created_on_first_push=current.is_repository_created_on_first_push
                if create_on_first_push is None
                else create_on_first_push,
                is_compartment_created_on_first_push=current.is_compartment_created_on_first_push
                if create_compartment is None
                else create_compartment,
            )
        )
        if json_out:
            emit_json(updated)
        else:
            typer.echo(
                f"create repository on first push: {updated.is_repository_created_on_first_push}; "
                f"create compartment on first push: {updated.is_compartment_created_on_first_push}"
            )
