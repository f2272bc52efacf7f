"""``modelyard webhook create|list|show|delete|deliveries|redeliver|types``.

A scope is ``--repo NAME``, ``--compartment NAME`` or neither (the whole registry). The signing
secret is printed once, by ``create``; receivers verify the ``webhook-signature`` header with it
(Standard Webhooks: any of its libraries, or HMAC-SHA256 by hand, see the README).
"""

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
    err,
    usage_error,
    validated,
)
from modelyard.schemas import webhooks as schemas

webhook_app = typer.Typer(help="Webhooks: POST signed CloudEvents to a URL when things happen (administrators).")

Repo = Annotated[str | None, typer.Option("--repo", help="Events of this repository.")]
CompartmentName = Annotated[str | None, typer.Option("--compartment", "-c", help="Events of this compartment.")]
WebhookId = Annotated[int, typer.Argument(help="The webhook's id (modelyard webhook list).")]


def _scope(repo: str | None, compartment: str | None) -> str:
    if repo is not None and compartment is not None:
        raise usage_error("give --repo or --compartment, not both")
    if repo is not None:
        return f"repository:{repo}"
    if compartment is not None:
        return f"compartment:{compartment}"
    return "registry"


def _show(hook: schemas.Webhook) -> list[tuple[str, object]]:
    return [
        ("id", hook.id), ("scope", hook.scope), ("url", hook.url), ("events", ", ".join(hook.event_types)),
        ("description", hook.description), ("created", f"{hook.created_at.isoformat()} by {hook.created_by or '?'}"),
    ]  # fmt: skip


@webhook_app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="Where to POST events (http or https).")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="Event type or pattern, repeatable (manifest.pushed, tag.*) [default: *]."),
    ] = None,
    repo: Repo = None,
    compartment: CompartmentName = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Subscribe URL to events; prints the signing secret, once."""
    spec = validated(schemas.WebhookCreate, {
        "scope": _scope(repo, compartment), "url": url, "event_types": event or ["*"], "description": description,
    })  # fmt: skip
    with admin_client(registry) as client:
        created = client.create_webhook(spec)
    if as_json:
        emit_json(created)
        return
    emit_fields(created, [*_show(created), ("secret", created.secret)])
    err.print("The secret is shown only this once: keep it where the receiver can read it.", highlight=False)


@webhook_app.command("list")
def list_webhooks(
    repo: Repo = None, compartment: CompartmentName = None, registry: RegistryOption = None, as_json: JsonOption = False
) -> None:
    """Webhooks you manage (only those of --repo or --compartment when given)."""
    scope = None if repo is None and compartment is None else _scope(repo, compartment)
    with admin_client(registry) as client:
        hooks = client.list_webhooks(scope)
    if as_json:
        emit_json(hooks)
        return
    emit_table(hooks, [
        ("ID", lambda h: h.id), ("SCOPE", lambda h: h.scope), ("URL", lambda h: h.url),
        ("EVENTS", lambda h: ", ".join(h.event_types)), ("DESCRIPTION", lambda h: h.description),
    ])  # fmt: skip


@webhook_app.command("show")
def show(webhook_id: WebhookId, registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """One webhook (never its secret)."""
    with admin_client(registry) as client:
        hook = client.get_webhook(webhook_id)
    if as_json:
        emit_json(hook)
        return
    emit_fields(hook, _show(hook))


@webhook_app.command("delete")
def delete(webhook_id: WebhookId, registry: RegistryOption = None) -> None:
    """Delete a webhook and its delivery log."""
    with admin_client(registry) as client:
        client.delete_webhook(webhook_id)
    typer.echo(f"deleted webhook {webhook_id}")


@webhook_app.command("deliveries")
def deliveries(
    webhook_id: WebhookId,
    delivery: Annotated[int | None, typer.Option("--delivery", "-d", help="One delivery, with its attempts.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """The delivery log: state, attempts, last answer; with --delivery, each attempt."""
    with admin_client(registry) as client:
        if delivery is not None:
            detail = client.get_delivery(webhook_id, delivery)
        else:
            items = client.list_deliveries(webhook_id, limit=limit).items
    if delivery is not None:
        if as_json:
            emit_json(detail)
            return
        emit_fields(detail, [("id", detail.id), ("event", f"{detail.event_type} {detail.resource}"),
                             ("state", detail.state), ("attempts", detail.attempts)])  # fmt: skip
        emit_table(detail.log, [
            ("ATTEMPT", lambda a: a.attempt), ("TIME", lambda a: a.time.isoformat()),
            ("STATUS", lambda a: a.status_code), ("MS", lambda a: f"{a.duration_ms:.0f}"), ("ERROR", lambda a: a.error),
        ])  # fmt: skip
        return
    if as_json:
        emit_json(items)
        return
    emit_table(items, [
        ("ID", lambda d: d.id), ("EVENT", lambda d: d.event_type), ("RESOURCE", lambda d: d.resource),
        ("STATE", lambda d: d.state), ("ATTEMPTS", lambda d: d.attempts), ("LAST", lambda d: d.last_status_code),
        ("ERROR", lambda d: d.last_error), ("WHEN", lambda d: d.updated_at.isoformat()),
    ])  # fmt: skip


@webhook_app.command("redeliver")
def redeliver(
    webhook_id: WebhookId,
    delivery: Annotated[int, typer.Argument(help="The delivery's id (modelyard webhook deliveries).")],
    tries: Annotated[
        int | None, typer.Option(help="Tries to give it [default: the server's webhook_max_attempts].")
    ] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a delivery again now (same event and id), with fresh tries."""
    with admin_client(registry) as client:
        again = client.redeliver(webhook_id, delivery, tries)
    if as_json:
        emit_json(again)
        return
    typer.echo(f"delivery {again.id} of webhook {webhook_id} queued again ({again.tries_left} tries)")


@webhook_app.command("types")
def types(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """The event types a webhook can filter on."""
    with admin_client(registry) as client:
        names = client.webhook_event_types()
    if as_json:
        emit_json(schemas.EventTypes(items=names))
        return
    for name in names:
        typer.echo(name)
