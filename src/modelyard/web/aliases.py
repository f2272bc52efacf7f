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
from modelyard.domain.errors import RegistryError
from modelyard.policy.authorizer import Permission
from modelyard.schemas import aliases as schemas
from modelyard.web.browse import validated
from modelyard.web.page import WebCall, notice_of, repo_url

TIMELINE_LENGTH = 20  # newest moves per alias shown; the API pages through the rest
ALIASES_SHOWN = 100  # a repository whose every tag is mutable has as many aliases as tags
TARGET_CHOICES = 1000  # tags suggested by the move form (any version may be typed)
NAMED_DIGESTS = 200  # digests of the timelines named by their versions; others show as digests


async def aliases(call: WebCall) -> web.StreamResponse:
    name = call.path("repository")
    listed = await aliases_api.list_aliases(call)  # checks pull: a hidden repository is not found
    service = call.registry.aliases
    timelines: dict[str, Any] = {}
    for alias in listed.items[:ALIASES_SHOWN]:
        page = await call.registry.read(service.history, name, alias.name, None, TIMELINE_LENGTH, None)
        timelines[alias.name] = page.items
    shown = await repositories_api.get_repository(call)
    alias_names = {a.name for a in listed.items}
    digests = {d for entries in timelines.values() for e in entries for d in (e.from_digest, e.to_digest) if d}
    # The versions (immutable tags) now on each digest of the timelines, to name them.
    tags_by_digest: dict[str, list[str]] = {}
    for digest in sorted(digests)[:NAMED_DIGESTS]:
        try:
            record = await call.registry.models.version(name, digest, with_files=False)
        except RegistryError:
            continue  # deleted since: shown by its digest
        tags_by_digest[digest] = [t for t in record.tags if t not in alias_names]
    names = await call.registry.read(call.registry.listing.tags, name, TARGET_CHOICES, None)
    return await call.render(
        "aliases.html",
        repo=shown,
        aliases=listed.items[:ALIASES_SHOWN],
        alias_count=len(listed.items),
        timelines=timelines,
        targets=[tag for tag in names.items if tag not in alias_names],
        tags_by_digest=tags_by_digest,
        can_move=await call.can(Permission.MOVE_TAG, "repository", name),
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
