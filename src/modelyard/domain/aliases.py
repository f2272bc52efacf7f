"""Aliases and their history: the records of ``services/aliases.py`` and the stores.

An *alias* is a mutable tag (``prod``, ``staging``, ``latest``): it moves between *versions*,
the immutable tags (``v1.0``). Every move of any tag is one :class:`HistoryEntry`, appended in
the transaction that moves the tag and never changed afterwards, so "what did ``prod`` point to
last Tuesday, who moved it and why" is always answerable, even once the tag or the manifest it
named is gone.

Alias rules live in the repository settings: :class:`ProtectedAlias` (who may move an alias)
and :class:`PromotionGate` (what a manifest needs before an alias may point at it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

How = Literal["push", "api", "rollback", "retention", "delete"]
HOWS: tuple[How, ...] = ("push", "api", "rollback", "retention", "delete")


@dataclass(frozen=True, slots=True)
class TagChange:
    """How a tag is being changed, for its history: by whom (a subject such as ``user:alice``,
    ``None`` when unknown), through what, and why."""

    how: How
    actor: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One move of a tag: from ``from_digest`` (``None``: the tag was new) to ``to_digest``
    (``None``: the tag was deleted). ``manifest_present``: whether ``to_digest`` is still stored."""

    id: int
    tag: str
    from_digest: str | None
    to_digest: str | None
    actor: str | None
    at: datetime
    how: str
    reason: str | None
    manifest_present: bool


@dataclass(frozen=True, slots=True)
class CurrentTag:
    """A tag as it stands, with its last move (``moved_by`` ``None``: unknown, e.g. recorded
    before history was kept)."""

    name: str
    digest: str
    moved_at: datetime
    moved_by: str | None


@dataclass(frozen=True, slots=True)
class ProtectedAlias:
    """Tags matching ``alias`` (a glob) may be moved, created or deleted only by principals bound
    to one of ``roles`` (or a role that includes one) on the repository, or named in ``members``."""

    alias: str
    roles: tuple[str, ...] = ()
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PromotionGate:
    """Tags matching ``alias`` may point only at a manifest that has a referrer of each of
    ``required_referrer_types`` and, with ``require_alias_first``, that this alias (e.g.
    ``staging``) has pointed at before."""

    alias: str
    required_referrer_types: tuple[str, ...] = ()
    require_alias_first: str | None = None


@dataclass(frozen=True, slots=True)
class AliasRules:
    protected: tuple[ProtectedAlias, ...] = ()
    gates: tuple[PromotionGate, ...] = ()


def protected_from(raw: object) -> tuple[ProtectedAlias, ...]:
    """Rules as the repository row stores them (JSON), ignoring malformed entries."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        ProtectedAlias(
            str(item["alias"]),
            tuple(str(r) for r in item.get("roles") or ()),
            tuple(str(m) for m in item.get("members") or ()),
        )
        for item in raw
        if isinstance(item, dict) and item.get("alias")
    )


def gates_from(raw: object) -> tuple[PromotionGate, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        PromotionGate(
            str(item["alias"]),
            tuple(str(r) for r in item.get("required_referrer_types") or ()),
            None if item.get("require_alias_first") is None else str(item["require_alias_first"]),
        )
        for item in raw
        if isinstance(item, dict) and item.get("alias")
    )


def protected_json(rules: tuple[ProtectedAlias, ...]) -> list[dict[str, object]]:
    return [{"alias": r.alias, "roles": list(r.roles), "members": list(r.members)} for r in rules]


def gates_json(gates: tuple[PromotionGate, ...]) -> list[dict[str, object]]:
    return [
        {
            "alias": g.alias,
            "required_referrer_types": list(g.required_referrer_types),
            "require_alias_first": g.require_alias_first,
        }
        for g in gates
    ]


class TagMoveConflict(Exception):
    """The tag did not point where the caller expected (optimistic concurrency); ``current`` is
    where it points (``None``: it does not exist)."""

    def __init__(self, tag: str, current: str | None) -> None:
        super().__init__(f"{tag} -> {current}")
        self.tag = tag
        self.current = current


class TargetMissing(Exception):
    """The manifest a tag was to point at is not (or no longer) in the repository."""
