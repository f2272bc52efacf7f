"""Aliases: each mutable tag, where it points, its timeline (who moved it, when, from what to
what, why), and buttons to move it to a version or roll it back.

Moves and rollbacks are the admin API's handlers (``api/admin/aliases.py``) with the form's
values: the service checks the caller's tag permissions, protected aliases and promotion
gates, and the form sends the digest the page showed as ``expected_digest``, so a move made by
someone else since answers "conflict" instead of being overwritten. The buttons are shown to
those holding ``repository.tag.move``; the server decides either way.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelyard.api.admin import aliases as aliases_api
from modelyard.api.admin import repositories as repositories_api
from modelyard.policy.authorizer import Permission
from modelyard.schemas import aliases as schemas
from modelyard.web.browse import validated
from modelyard.web.page import WebCall, notice_of, repo_url

TIMELINE_LENGTH = 50


async def aliases(call: WebCall) -> web.StreamResponse:
    name = call.path("repository")
    listed = await aliases_api.list_aliases(call)  # checks pull: a hidden repository is not found
    service = call.registry.aliases
    timelines: dict[str, Any] = {}
    for alias in listed.items:
        page = await call.registry.read(service.history, name, alias.name, None, TIMELINE_LENGTH, None)
        timelines[alias.name] = page.items
    versions = await call.registry.read(call.registry.repositories.versions, name, 1000, None)
    shown = await repositories_api.get_repository(call)
    alias_names = {a.name for a in listed.items}
    tags_by_digest: dict[str, list[str]] = {}  # versions by digest, to name the timeline's targets
    for version in versions:
        if version.tag not in alias_names:
            tags_by_digest.setdefault(version.digest, []).append(version.tag)
    return call.render(
        "aliases.html",
        repo=shown,
        aliases=listed.items,
        timelines=timelines,
        targets=[v.tag for v in versions if v.tag not in alias_names],
        tags_by_digest=tags_by_digest,
        can_move=call.can(Permission.MOVE_TAG, "repository", name),
        tab="aliases",
        notice=notice_of(call),
    )


def _optional(value: str) -> str | None:
    return value or None


async def rollback(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.AliasRollback, {
        "to": _optional(call.field("to")), "reason": _optional(call.field("reason")),
        "expected_digest": _optional(call.field("expected_digest")),
    })  # fmt: skip
    moved = await aliases_api.rollback_alias(call)
    target = ", ".join(moved.versions) or moved.digest
    return call.redirect(repo_url(call.path("repository"), "aliases"), f"{moved.name} rolled back to {target}.")


async def move(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.AliasMove, {
        "target": call.field("target"), "reason": _optional(call.field("reason")),
        "expected_digest": _optional(call.field("expected_digest")),
    })  # fmt: skip
    moved = await aliases_api.move_alias(call)
    target = ", ".join(moved.versions) or moved.digest
    return call.redirect(repo_url(call.path("repository"), "aliases"), f"{moved.name} now points at {target}.")
