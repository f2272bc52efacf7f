"""``modelyard alias …`` and ``modelyard rollback``: the mutable tags a team serves through.

``alias list`` shows each alias with its target and the versions on it; ``alias history``
renders a tag's timeline (who moved it, when, how, why, and whether the manifest is still
there); ``alias set`` and ``rollback`` move an alias atomically, refusing (exit 1) when someone
moved it first (``--expect``), a protection or a promotion gate says no. ``alias protect`` and
``alias gate`` edit the repository's alias rules. Every command takes ``--json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from modelyard.cli.common import (
    JsonOption,
    RegistryOption,
    admin_client,
    emit_json,
    emit_table,
    out,
    usage_error,
    validated,
)
from modelyard.client import ApiError
from modelyard.schemas import admin as admin_schemas
from modelyard.schemas import aliases as schemas

alias_app = typer.Typer(help="Aliases (mutable tags such as prod, staging): list, history, set, delete, rules.")

Repo = Annotated[str, typer.Argument(help="The repository, e.g. acme/llm.")]
Alias = Annotated[str, typer.Argument(help="The alias (a mutable tag), e.g. prod.")]
Reason = Annotated[str | None, typer.Option("--reason", help="Why; kept in the alias's history.")]
Expect = Annotated[
    str | None,
    typer.Option("--expect", help="Only if the alias points at this digest now (else refused: someone moved it)."),
]


def _short(digest: str | None) -> str:
    return "-" if digest is None else digest[:19]


def _show(alias: schemas.Alias, verb: str) -> None:
    versions = f" ({', '.join(alias.versions)})" if alias.versions else ""
    out.print(f"{alias.name} {verb} {alias.digest}{versions}", highlight=False)


def _moved(found: schemas.Alias, json_out: bool, verb: str) -> None:
    emit_json(found) if json_out else _show(found, verb)


def _conflict_hint(exc: ApiError) -> None:
    if exc.status == 409 and isinstance(exc.detail, dict) and exc.detail.get("current_digest"):
        exc.message += f" (it points at {exc.detail['current_digest']})"


def _time(value: str) -> datetime:
    """ISO 8601 (``Z`` or an offset; none: UTC), or a usage error."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise usage_error(f"--at {value!r} is not an ISO 8601 time, e.g. 2026-11-24T09:00:00Z") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@alias_app.command("list")
def alias_list(repo: Repo, registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """List the repository's aliases, their targets and the versions on them."""
    with admin_client(registry) as client:
        items = client.aliases(repo)
    if json_out:
        emit_json(items)
        return
    emit_table(
        items,
        [("ALIAS", lambda a: a.name), ("DIGEST", lambda a: _short(a.digest)),
         ("VERSIONS", lambda a: ", ".join(a.versions)), ("PROTECTED", lambda a: "yes" if a.protected else ""),
         ("MOVED", lambda a: a.moved_at.isoformat(timespec="seconds")), ("BY", lambda a: a.moved_by or "?")],
    )  # fmt: skip


@alias_app.command("history")
def alias_history(
    repo: Repo,
    alias: Alias,
    at: Annotated[
        str | None, typer.Option("--at", help="Only what it pointed at then (ISO 8601, UTC if no zone).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many entries.")] = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """The alias's timeline, newest first: from, to, who, when, how, why."""
    when = _time(at) if at is not None else None
    with admin_client(registry) as client:
        if when is not None:
            entries = client.alias_history(repo, alias, at=when).items
        else:
            entries = []
            for entry in client.iter_alias_history(repo, alias):
                entries.append(entry)
                if limit is not None and len(entries) >= limit:
                    break
    if json_out:
        emit_json(entries)
        return
    if not entries:
        out.print(f"{alias} has no history{' at that time' if at else ''}", highlight=False)
        return
    for entry in entries:
        target = "deleted" if entry.to_digest is None else entry.to_digest
        gone = "" if entry.to_digest is None or entry.manifest_present else "  [manifest deleted]"
        why = f'  "{entry.reason}"' if entry.reason else ""
        out.print(
            f"{entry.at.isoformat(timespec='seconds')}  {entry.how:<9} {_short(entry.from_digest):<19} -> "
            f"{target}{gone}  by {entry.actor or '?'}{why}",
            highlight=False,
        )


@alias_app.command("set")
def alias_set(
    repo: Repo,
    alias: Alias,
    target: Annotated[str, typer.Argument(help="A version tag (v1.0) or a digest (sha256:…).")],
    reason: Reason = None,
    expect: Expect = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Point an alias at a version or digest (atomic; audited; --expect for optimistic concurrency)."""
    body = validated(schemas.AliasMove, {"target": target, "expected_digest": expect, "reason": reason})
    with admin_client(registry) as client:
        try:
            moved = client.set_alias(repo, alias, body.target, expected_digest=body.expected_digest, reason=reason)
        except ApiError as exc:
            _conflict_hint(exc)
            raise
    _moved(moved, json_out, "->")


@alias_app.command("delete")
def alias_delete(
    repo: Repo,
    alias: Alias,
    reason: Reason = None,
    expect: Expect = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Delete an alias (its history stays; the manifest stays)."""
    with admin_client(registry) as client:
        try:
            client.delete_alias(repo, alias, expected_digest=expect, reason=reason)
        except ApiError as exc:
            _conflict_hint(exc)
            raise
    if json_out:
        typer.echo('{"deleted": true}')
    else:
        out.print(f"deleted {alias} of {repo}", highlight=False)


def rollback(
    repo: Repo,
    alias: Alias,
    to: Annotated[
        str | None, typer.Option("--to", help="A version or digest [default: the previous target still present].")
    ] = None,
    reason: Reason = None,
    expect: Expect = None,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Put an alias back where it was: one command for the 3 a.m. page."""
    body = validated(schemas.AliasRollback, {"to": to, "expected_digest": expect, "reason": reason})
    with admin_client(registry) as client:
        try:
            moved = client.rollback(repo, alias, to=body.to, reason=reason, expected_digest=body.expected_digest)
        except ApiError as exc:
            _conflict_hint(exc)
            raise
    _moved(moved, json_out, "rolled back to")


# -- the repository's alias rules ---------------------------------------------------------


def _rules(repository: admin_schemas.Repository) -> None:
    for rule in repository.protected_aliases:
        who = [f"role {r}" for r in rule.roles] + list(rule.members)
        out.print(f"protected {rule.alias}: only {' or '.join(who) or 'nobody'} may move it", highlight=False)
    for gate in repository.promotion_gates:
        needs = [f"a referrer of type {t}" for t in gate.required_referrer_types]
        if gate.require_alias_first:
            needs.append(f"{gate.require_alias_first} pointing at it first")
        out.print(f"gate {gate.alias}: needs {' and '.join(needs) or 'nothing'}", highlight=False)
    if not repository.protected_aliases and not repository.promotion_gates:
        out.print("no alias rules", highlight=False)


@alias_app.command("rules")
def alias_rules(repo: Repo, registry: RegistryOption = None, json_out: JsonOption = False) -> None:
    """Show the repository's protected aliases and promotion gates."""
    with admin_client(registry) as client:
        found = client.get_repository(repo)
    if json_out:
        typer.echo(
            admin_schemas.RepositoryUpdate(
                protected_aliases=found.protected_aliases, promotion_gates=found.promotion_gates
            ).model_dump_json(indent=2)
        )
    else:
        _rules(found)


@alias_app.command("protect")
def alias_protect(
    repo: Repo,
    alias: Annotated[str, typer.Argument(help="An alias or a glob of them, e.g. prod or release-*.")],
    role: Annotated[list[str] | None, typer.Option("--role", help="A role that may move it (repeatable).")] = None,
    member: Annotated[
        list[str] | None, typer.Option("--member", help="A member that may move it (repeatable).")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the protection instead.")] = False,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Protect an alias: only the given roles or members may move, create or delete it."""
    with admin_client(registry) as client:
        current = client.get_repository(repo)
        rules = [r for r in current.protected_aliases if r.alias != alias]
        if not remove:
            rules.append(
                validated(admin_schemas.ProtectedAlias, {"alias": alias, "roles": role or [], "members": member or []})
            )
        updated = client.update_repository(repo, admin_schemas.RepositoryUpdate(protected_aliases=rules))
    emit_json(updated) if json_out else _rules(updated)


@alias_app.command("gate")
def alias_gate(
    repo: Repo,
    alias: Annotated[str, typer.Argument(help="An alias or a glob of them, e.g. prod.")],
    require_referrer: Annotated[
        list[str] | None,
        typer.Option("--require-referrer", help="An artifact type the target needs a referrer of (repeatable)."),
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="An alias (e.g. staging) that must have pointed at the target first.")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the gate instead.")] = False,
    registry: RegistryOption = None,
    json_out: JsonOption = False,
) -> None:
    """Gate an alias: it may only point at manifests with the given referrers (and staged first)."""
    with admin_client(registry) as client:
        current = client.get_repository(repo)
        gates = [g for g in current.promotion_gates if g.alias != alias]
        if not remove:
            gates.append(
                validated(
                    admin_schemas.PromotionGate,
                    {"alias": alias, "required_referrer_types": require_referrer or [], "require_alias_first": after},
                )
            )
        updated = client.update_repository(repo, admin_schemas.RepositoryUpdate(promotion_gates=gates))
    emit_json(updated) if json_out else _rules(updated)
