"""``modelyard login|logout|whoami``, ``user``, ``sa`` (service accounts and keys), ``group``,
``iam`` and ``audit``."""

from __future__ import annotations

import sys
from typing import Annotated

import httpx
import typer

from modelyard.cli.common import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    JsonOption,
    RegistryOption,
    admin_client,
    emit_json,
    emit_table,
    err,
    usage_error,
)
from modelyard.cli.common import (
    registry_url as resolve_registry,
)
from modelyard.client import ApiError
from modelyard.client.auth import forget, password_login, store_refresh_token
from modelyard.schemas import admin as schemas

user_app = typer.Typer(help="Manage users.")
sa_app = typer.Typer(help="Manage service accounts and their API keys.")
sa_key_app = typer.Typer(help="API keys of a service account.")
sa_app.add_typer(sa_key_app, name="key")
group_app = typer.Typer(help="Manage groups of users.")
iam_app = typer.Typer(help="Show and change IAM bindings (role + members) on the registry, a compartment or a repo.")

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]
Compartment = Annotated[str | None, typer.Option("--compartment", help="Bindings on this compartment.")]
Repo = Annotated[str | None, typer.Option("--repo", help="Bindings on this repository.")]


def _password(from_stdin: bool, prompt: str = "Password") -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise usage_error("no password on standard input")
        return value
    return str(typer.prompt(prompt, hide_input=True))


def login(
    registry_url: Annotated[
        str | None, typer.Argument(help="Registry URL (default: --registry / MODELYARD_URL).")
    ] = None,
    username: Annotated[str, typer.Option("--username", "-u", prompt=True, help="User or service account name.")] = "",
    password_stdin: PasswordStdin = False,
    registry: RegistryOption = None,
) -> None:
    """Log in and store a refresh token for later commands (the password is never stored).

    The registry logged in to last is the default of every later command."""
    url = resolve_registry(registry_url or registry)
    password = _password(password_stdin)
    try:
        refresh = password_login(url, username, password)
    except httpx.HTTPStatusError as exc:
        message = exc.response.text[:300]
        err.print(f"[red]error[/red]: login refused (HTTP {exc.response.status_code}): {message}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    except httpx.TransportError as exc:
        err.print(f"[red]error[/red]: cannot reach the registry at {url}: {exc}", highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    path = store_refresh_token(url, username, refresh)
    typer.echo(f"Login Succeeded (credentials stored in {path})")


def logout(
    registry_url: Annotated[str | None, typer.Argument(help="Registry URL.")] = None,
    registry: RegistryOption = None,
) -> None:
    """Forget the stored credentials of a registry."""
    url = resolve_registry(registry_url or registry)
    typer.echo("logged out" if forget(url) else f"not logged in to {url}")


def whoami(registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """Show who the registry thinks you are, and which registry was asked."""
    with admin_client(registry) as client:
        me = client.me()
        if json_out:
            emit_json(me)
        else:
            groups = f" (groups: {', '.join(me.groups)})" if me.groups else ""
            disabled = "" if me.auth_enabled else " [authentication is disabled]"
            typer.echo(f"{me.subject}{groups} at {resolve_registry(registry)}{disabled}")


# -- users ------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: str,
    email: Annotated[str, typer.Option(help="Email address (IAM members: user:EMAIL).")],
    password_stdin: PasswordStdin = False,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a user."""
    password = _password(password_stdin)
    with admin_client(registry) as client:
        user = client.create_user(schemas.UserCreate(name=name, email=email, password=password))
        emit_json(user) if json_out else typer.echo(f"created user {user.name} ({user.member})")


@user_app.command("list")
def user_list(registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List users."""
    with admin_client(registry) as client:
        users = client.list_users()
        if json_out:
            emit_json(users)
        else:
            emit_table(users, [("NAME", lambda u: u.name), ("EMAIL", lambda u: u.email),
                               ("GROUPS", lambda u: ",".join(u.groups))])  # fmt: skip


@user_app.command("delete")
def user_delete(name: str, registry: RegistryOption = None) -> None:
    """Delete a user (and its API keys)."""
    with admin_client(registry) as client:
        client.delete_user(name)
        typer.echo(f"deleted user {name}")


@user_app.command("passwd")
def user_passwd(name: str, password_stdin: PasswordStdin = False, registry: RegistryOption = None) -> None:
    """Change a user's password: your own (asks for the current one first; with --password-stdin,
    the current password is the first line and the new one the second), or anyone's as an admin."""
    with admin_client(registry) as client:
        me = client.me()
        own = me.auth_enabled and me.kind == "user" and me.name == name
        current = _password(password_stdin, "Current password") if own else None
        password = _password(password_stdin, "New password")
        client.set_password(name, password, current)
        typer.echo(f"password of {name} changed")


# -- service accounts -------------------------------------------------------------------------


@sa_app.command("create")
def sa_create(
    name: Annotated[str, typer.Argument(help="e.g. ci-bot@acme")],
    description: Annotated[str, typer.Option(help="What uses it.")] = "",
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a service account (then give it a key and a binding)."""
    with admin_client(registry) as client:
        account = client.create_service_account(schemas.ServiceAccountCreate(name=name, description=description))
        emit_json(account) if json_out else typer.echo(f"created service account {account.member}")


@sa_app.command("list")
def sa_list(registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List service accounts."""
    with admin_client(registry) as client:
        accounts = client.list_service_accounts()
        if json_out:
            emit_json(accounts)
        else:
            emit_table(accounts, [("NAME", lambda a: a.name), ("DESCRIPTION", lambda a: a.description)])


@sa_app.command("delete")
def sa_delete(name: str, registry: RegistryOption = None) -> None:
    """Delete a service account and its keys."""
    with admin_client(registry) as client:
        client.delete_service_account(name)
        typer.echo(f"deleted service account {name}")


@sa_key_app.command("create")
def sa_key_create(
    account: str,
    expires_in_days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create an API key; it is printed once (use it as the password of docker login)."""
    with admin_client(registry) as client:
        key = client.create_api_key(
            f"serviceAccount:{account}", schemas.ApiKeyCreate(description=description, expires_in_days=expires_in_days)
        )
        if json_out:
            emit_json(key)
        else:
            typer.echo(f"key {key.id} for {account} (shown only now):\n{key.secret}")


@sa_key_app.command("list")
def sa_key_list(account: str, registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List a service account's keys (never their secrets)."""
    with admin_client(registry) as client:
        keys = client.list_api_keys(f"serviceAccount:{account}")
        if json_out:
            emit_json(keys)
        else:
            emit_table(
                keys,
                [("ID", lambda k: k.id), ("DESCRIPTION", lambda k: k.description),
                 ("EXPIRES", lambda k: k.time_expires.isoformat(timespec="seconds") if k.time_expires else "never"),
                 ("REVOKED", lambda k: "yes" if k.time_revoked else ""),
                 ("LAST USED", lambda k: k.time_last_used.isoformat(timespec="seconds") if k.time_last_used else "")],
            )  # fmt: skip


@sa_key_app.command("revoke")
def sa_key_revoke(account: str, key_id: str, registry: RegistryOption = None) -> None:
    """Revoke a key at once."""
    with admin_client(registry) as client:
        client.revoke_api_key(f"serviceAccount:{account}", key_id)
        typer.echo(f"revoked key {key_id}")


# -- groups -----------------------------------------------------------------------------------


@group_app.command("create")
def group_create(name: str, registry: RegistryOption = None) -> None:
    """Create a group."""
    with admin_client(registry) as client:
        typer.echo(f"created group {client.create_group(name).member}")


@group_app.command("list")
def group_list(registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List groups and members."""
    with admin_client(registry) as client:
        groups = client.list_groups()
        if json_out:
            emit_json(groups)
        else:
            emit_table(groups, [("NAME", lambda g: g.name), ("MEMBERS", lambda g: ", ".join(g.members))])


@group_app.command("set-members")
def group_set_members(
    name: str,
    members: Annotated[list[str], typer.Argument(help="User names (replaces the current members).")],
    registry: RegistryOption = None,
) -> None:
    """Replace a group's members."""
    with admin_client(registry) as client:
        group = client.set_group_members(name, members)
        typer.echo(f"{group.name}: {', '.join(group.members)}")


@group_app.command("delete")
def group_delete(name: str, registry: RegistryOption = None) -> None:
    """Delete a group."""
    with admin_client(registry) as client:
        client.delete_group(name)
        typer.echo(f"deleted group {name}")


# -- IAM --------------------------------------------------------------------------------------


def _target(compartment: str | None, repo: str | None) -> dict[str, str | None]:
    if compartment is not None and repo is not None:
        raise usage_error("give --compartment or --repo, not both (neither: the registry)")
    return {"compartment": compartment, "repository": repo}


def _show_policy(policy: schemas.Policy) -> None:
    emit_table(
        policy.bindings,
        [("ROLE", lambda b: b.role), ("MEMBERS", lambda b: ", ".join(b.members)),
         ("TAGS", lambda b: "" if b.condition is None else ", ".join(b.condition.tags))],
    )  # fmt: skip
    typer.echo(f"etag: {policy.etag}")


@iam_app.command("show")
def iam_show(
    compartment: Compartment = None,
    repo: Repo = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show the bindings on the registry (default), a compartment or a repository."""
    with admin_client(registry) as client:
        policy = client.get_policy(**_target(compartment, repo))
        emit_json(policy) if json_out else _show_policy(policy)


def _edit(
    registry: str | None,
    target: dict[str, str | None],
    role: str,
    member: str,
    add: bool,
    json_out: bool,
    tags: list[str] | None = None,
) -> None:
    """Add or remove ``member`` in the binding of ``role`` limited to ``tags`` (none: unconditional)."""
    condition = schemas.BindingCondition(tags=tags) if tags else None
    with admin_client(registry) as client:
        policy = client.get_policy(**target)
        bindings = [b.model_copy(deep=True) for b in policy.bindings]
        found = next((b for b in bindings if b.role == role and b.condition == condition), None)
        if add:
            if found is None:
                bindings.append(schemas.BindingModel(role=role, members=[member], condition=condition))
            elif member not in found.members:
                found.members.append(member)
        else:
            if found is None or member not in found.members:
                raise usage_error(f"{member} has no {role} binding here")
            found.members.remove(member)
            bindings = [b for b in bindings if b.members]
        try:
            updated = client.set_policy(schemas.Policy(bindings=bindings, etag=policy.etag), **target)
        except ApiError as exc:
            if exc.status == 409:
                exc.message += " (someone changed the policy meanwhile: run the command again)"
            raise
        emit_json(updated) if json_out else _show_policy(updated)


@iam_app.command("add-binding")
def iam_add(
    role: Annotated[str, typer.Option(help="reader, pusher, writer, repoAdmin or admin.")],
    member: Annotated[str, typer.Option(help="user:EMAIL, serviceAccount:NAME, group:NAME, allUsers, ...")],
    compartment: Compartment = None,
    repo: Repo = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Limit the grant to tags matching this glob, e.g. 'build-*' (repeatable)."),
    ] = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Grant a role to a member (read-modify-write with the policy's etag); --tag limits the tags it may write."""
    _edit(registry, _target(compartment, repo), role, member, True, json_out, tag)


@iam_app.command("remove-binding")
def iam_remove(
    role: Annotated[str, typer.Option(help="The role to take away.")],
    member: Annotated[str, typer.Option(help="The member to take it from.")],
    compartment: Compartment = None,
    repo: Repo = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="The tag globs of the binding (repeatable).")] = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Take a role away from a member."""
    _edit(registry, _target(compartment, repo), role, member, False, json_out, tag)


def audit(
    actor: Annotated[str | None, typer.Option(help="Only this actor, e.g. user:alice.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. push, login, iam.set.")] = None,
    limit: Annotated[int, typer.Option(help="How many events.")] = 50,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Read the audit log, newest first."""
    with admin_client(registry) as client:
        events = client.audit(actor=actor, action=action, limit=limit).items
        if json_out:
            emit_json(events)
        else:
            emit_table(
                events,
                [("TIME", lambda e: e.time.isoformat(timespec="seconds")), ("ACTOR", lambda e: e.actor),
                 ("ACTION", lambda e: e.action), ("RESOURCE", lambda e: e.resource),
                 ("OUTCOME", lambda e: e.outcome), ("FROM", lambda e: e.client_ip)],
            )  # fmt: skip
