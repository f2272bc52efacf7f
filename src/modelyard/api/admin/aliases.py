"""Aliases and tag history: ``/api/v1/repositories/{name}/-/aliases[/{alias}[/rollback]]`` and
``/api/v1/repositories/{name}/-/tags/{tag}/history`` (the contract is ``services/aliases.py``'s).

Reading needs ``pull`` on the repository (one the caller may not read is "not found"); writing
needs ``pull`` here, and the service then asks the caller's tag-scoped permissions, the
repository's protected aliases and its promotion gates.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from modelyard.api.admin.framework import LIMIT, Call, Operation, QueryParam, validation_error
from modelyard.domain.aliases import HistoryEntry
from modelyard.policy.authorizer import Permission, Principal
from modelyard.schemas import aliases as schemas
from modelyard.schemas.aliases import DIGEST_PATTERN, TIME_PATTERN
from modelyard.services.aliases import Alias


def _alias(record: Alias) -> schemas.Alias:
    return schemas.Alias(
        name=record.name,
        digest=record.digest,
        versions=list(record.versions),
        protected=record.protected,
        moved_at=record.moved_at,
        moved_by=record.moved_by,
    )


def _entry(record: HistoryEntry) -> schemas.HistoryEntry:
    return schemas.HistoryEntry.model_validate(
        {
            "tag": record.tag,
            "from_digest": record.from_digest,
            "to_digest": record.to_digest,
            "actor": record.actor,
            "at": record.at,
            "how": record.how,
            "reason": record.reason,
            "manifest_present": record.manifest_present,
        }
    )


async def _readable(call: Call) -> str:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    return name


def _principal(call: Call) -> Principal | None:
    """Who the rules judge; ``None`` with auth off (nobody to tell apart)."""
    return call.principal if call.auth_enabled else None


def _expected(call: Call, value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(DIGEST_PATTERN, value):
        raise validation_error([("expected_digest", "must be a digest (sha256:…)")])
    return value


async def list_aliases(call: Call) -> schemas.AliasList:
    name = await _readable(call)
    return schemas.AliasList(items=[_alias(a) for a in await call.registry.read(call.registry.aliases.list, name)])


async def get_alias(call: Call) -> schemas.Alias:
    name = await _readable(call)
    return _alias(await call.registry.read(call.registry.aliases.get, name, call.path("alias")))


async def move_alias(call: Call) -> schemas.Alias:
    name = await _readable(call)
    body: schemas.AliasMove = call.body
    moved = await call.registry.aliases.move(
        name, call.path("alias"), body.target, actor=call.actor, principal=_principal(call),
        expected_digest=_expected(call, body.expected_digest), reason=body.reason,
    )  # fmt: skip
    return _alias(moved)


async def rollback_alias(call: Call) -> schemas.Alias:
    name = await _readable(call)
    body: schemas.AliasRollback = call.body
    moved = await call.registry.aliases.rollback(
        name, call.path("alias"), actor=call.actor, principal=_principal(call), to=body.to, reason=body.reason,
        expected_digest=_expected(call, body.expected_digest),
    )  # fmt: skip
    return _alias(moved)


async def delete_alias(call: Call) -> None:
    name = await _readable(call)
    await call.registry.aliases.delete(
        name, call.path("alias"), actor=call.actor, principal=_principal(call),
        expected_digest=_expected(call, call.query_str("expected_digest")), reason=call.query_str("reason"),
    )  # fmt: skip


def _time(call: Call) -> datetime | None:
    raw = call.query_str("at")
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise validation_error([("at", "must be an ISO 8601 time, e.g. 2026-12-01T09:00:00Z")]) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def tag_history(call: Call) -> schemas.HistoryPage:
    name = await _readable(call)
    at = _time(call)
    limit = call.limit()
    page = await call.registry.read(call.registry.aliases.history, name, call.path("tag"), at, limit, call.page())
    return schemas.HistoryPage(items=[_entry(e) for e in page.items], next=page.next)


ONE = "/api/v1/repositories/{repository:.+}"
ALIASES = ONE + "/-/aliases"
ALIAS = ALIASES + "/{alias}"
TAG = "aliases"
AT = QueryParam("at", "string", "An ISO 8601 time: only the entry in force then.", pattern=TIME_PATTERN)
HISTORY_PAGE = QueryParam("page", "string", "The next value of the previous response.", pattern=r"^[0-9]{1,18}$")
EXPECTED = QueryParam(
    "expected_digest", "string", "Delete only if the alias points here (409 otherwise).", pattern=DIGEST_PATTERN
)
REASON = QueryParam("reason", "string", "Why; kept in the alias's history.")

OPERATIONS = [
    Operation("GET", ALIASES, "listAliases", "List a repository's aliases (mutable tags) and their targets", TAG,
              list_aliases, response=schemas.AliasList, errors=(404,)),
    Operation("POST", ALIAS + "/rollback", "rollbackAlias",
              "Point an alias back at an earlier target (default: the most recent one still present)", TAG,
              rollback_alias, body=schemas.AliasRollback, response=schemas.Alias, errors=(403, 404, 409, 422)),
    Operation("GET", ALIAS, "getAlias", "Get one alias", TAG, get_alias, response=schemas.Alias, errors=(404,)),
    Operation("PUT", ALIAS, "setAlias", "Point an alias at a version or digest (expected_digest: 409 if it moved)",
              TAG, move_alias, body=schemas.AliasMove, response=schemas.Alias, errors=(403, 404, 409, 422)),
    Operation("DELETE", ALIAS, "deleteAlias", "Delete an alias (its history stays)", TAG, delete_alias,
              status=204, query=(EXPECTED, REASON), errors=(403, 404, 409, 422)),
    Operation("GET", ONE + "/-/tags/{tag}/history", "getTagHistory",
              "A tag's history, newest first (?at= for the entry in force at a time)", TAG, tag_history,
              response=schemas.HistoryPage, query=(AT, LIMIT, HISTORY_PAGE), errors=(404, 422)),
]  # fmt: skip
