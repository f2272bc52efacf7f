"""Aliases: moving and rolling back the mutable tags a team serves through, with their history,
protections and promotion gates.

A repository's *versions* are its immutable tags (``v1.0``), its *aliases* the mutable ones
(``prod``, ``staging``, ``latest``). Every change of any tag -- a ``/v2`` push, a move here, a
rollback, a delete -- appends one entry to the tag's history in the transaction that makes it
(``metadata/sql_aliases.py``), so the history is complete and nothing edits it.

Moves here are atomic and optimistic: ``expected_digest`` says where the caller saw the alias,
and a move that finds it elsewhere is refused (409) instead of silently overwriting another
engineer's move. A rollback always expects the target it read, so of two concurrent rollbacks
exactly one wins.

Who may write which alias, and to what (:meth:`AliasService.check_write`, the one place both the
admin API and ``/v2`` pushes ask):

1. the caller's tag-scoped permissions (``policy.authorizer.tag_limits``: bindings limited to tag
   globs, e.g. CI as ``pusher`` on ``build-*``);
2. protected aliases: only the roles or members a rule names may write a matching alias;
3. promotion gates: a matching alias may only point at a manifest that has referrers of the
   required artifact types (an eval report, a signature) and, optionally, that another alias
   (``staging``) pointed at first.

Each refusal is ``DENIED`` with a message naming the rule and what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from modelyard.domain.aliases import (
    AliasRules,
    HistoryEntry,
    How,
    ProtectedAlias,
    TagChange,
    TagMoveConflict,
    TargetMissing,
)
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.errors import DeniedByState, ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import Actor, AliasMoved, Event, TagDeleted
from modelyard.domain.records import RepositoryRecord
from modelyard.domain.reference import is_valid_tag
from modelyard.metadata.alias_store import AliasStore
from modelyard.metadata.base import MetadataStore
from modelyard.policy.authorizer import Permission, Principal, includes_role, tag_allowed
from modelyard.policy.immutability import tag_is_immutable
from modelyard.services.audit import log_events
from modelyard.services.iam import IamService
from modelyard.services.repositories import repository_not_found
from modelyard.services.runner import BlockingRunner

MAX_HISTORY_PAGE = 1000

TagLimits = dict[Permission, tuple[str, ...] | None]


@dataclass(frozen=True, slots=True)
class Alias:
    """An alias as it stands: its target, the versions (immutable tags) on the same manifest,
    whether a protection covers it, and its last move."""

    name: str
    digest: str
    versions: tuple[str, ...]
    protected: bool
    moved_at: datetime
    moved_by: str | None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[HistoryEntry]
    next: str | None


def _matches(tag: str, pattern: str) -> bool:
    return fnmatchcase(tag, pattern)


def _digest(value: str, field: str) -> str:
    """A digest the caller sent, canonical, or 422 naming the field (not ``DIGEST_INVALID``: this
    is the admin API's validation, not an upload's content check)."""
    try:
        return str(Digest.parse(value))
    except RegistryError as exc:
        raise ValidationFailed([(field, exc.message)]) from None


def _conflict(repository: str, alias: str, expected: str | None, current: str | None) -> RegistryError:
    where = f"points at {current}" if current is not None else "does not exist"
    return RegistryError(
        ErrorCode.CONFLICT,
        f"alias {alias} of {repository} {where}, not {expected} as expected: someone moved it first; "
        "read it again and retry",
        detail={"reason": "ALIAS_MOVED", "alias": alias, "expected_digest": expected, "current_digest": current},
    )


class AliasService:
    def __init__(
        self,
        metadata: MetadataStore,
        store: AliasStore,
        iam: IamService,
        runner: BlockingRunner,
        principal_for: Callable[[str], Principal | None],
    ) -> None:
        self._meta = metadata
        self._store = store
        self._iam = iam
        self._run = runner.run
        # Who a /v2 token's subject is now (its groups and email), for protected aliases.
        self._principal_for = principal_for

    # -- reading ---------------------------------------------------------------------------

    def _repo(self, repository: str) -> RepositoryRecord:
        repo = self._meta.repositories.get(repository)
        if repo is None:
            raise repository_not_found(repository)
        return repo

    def rules(self, repository: str) -> AliasRules:
        return self._store.rules(repository)

    def list(self, repository: str) -> list[Alias]:
        """The repository's aliases: its current tags that are not immutable, by name."""
        repo = self._repo(repository)
        rules = self._store.rules(repository)
        current = self._store.current(repository)
        versions: dict[str, list[str]] = {}
        for tag in current:
            if tag_is_immutable(repo, tag.name):
                versions.setdefault(tag.digest, []).append(tag.name)
        return [
            Alias(
                name=tag.name,
                digest=tag.digest,
                versions=tuple(versions.get(tag.digest, ())),
                protected=any(_matches(tag.name, r.alias) for r in rules.protected),
                moved_at=tag.moved_at,
                moved_by=tag.moved_by,
            )
            for tag in current
            if not tag_is_immutable(repo, tag.name)
        ]

    def get(self, repository: str, alias: str) -> Alias:
        for found in self.list(repository):
            if found.name == alias:
                return found
        raise RegistryError(
            ErrorCode.NOT_FOUND, f"alias {alias} of {repository} does not exist", detail={"alias": alias}
        )

    def history(
        self, repository: str, tag: str, at: datetime | None = None, limit: int = 100, page: str | None = None
    ) -> HistoryPage:
        """A tag's history, newest first, ``limit`` per page (``page``: the previous page's
        ``next``); with ``at``, only the entry in force at that time (none before the tag existed).
        A tag never seen is an empty history, not an error: it may simply not exist yet."""
        self._repo(repository)
        if not is_valid_tag(tag):
            raise ValidationFailed([("tag", f"{tag[:150]!r} is not a valid tag")])
        if at is not None:
            return HistoryPage(self._store.history(repository, tag, at=at, limit=1, before_id=None), None)
        before = None
        if page is not None:
            if not (page.isascii() and page.isdigit() and len(page) <= 18):
                raise ValidationFailed([("page", "must be the next value of a previous response")])
            before = int(page)
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        found = self._store.history(repository, tag, at=None, limit=limit + 1, before_id=before)
        items = found[:limit]
        return HistoryPage(items, str(items[-1].id) if len(found) > limit else None)

    # -- the rules -------------------------------------------------------------------------

    def check_write(
        self,
        repo: RepositoryRecord,
        tag: str,
        digest: str | None,
        *,
        principal: Principal | None,
        limits: TagLimits | None,
        current: str | None,
    ) -> None:
        """Refuse (``DENIED``, naming the rule) a write of ``tag`` that points it at ``digest``
        (``None``: deletes it), where it points at ``current`` now.

        ``limits``: the caller's tag-scoped permissions (``None``: not limited, e.g. auth is off
        or the caller's token already carries them); ``principal``: who asks, for protected
        aliases (``None``: auth is off, nobody to tell apart).
        """
        if limits is not None:
            self._check_limits(repo.name, tag, digest, limits, current, principal)
        rules = self._store.rules(repo.name)
        if principal is not None:
            for rule in rules.protected:
                if _matches(tag, rule.alias) and not self._may_write_protected(repo.name, tag, rule, principal):
                    who = [f"role {r}" for r in rule.roles] + list(rule.members)
                    raise RegistryError(
                        ErrorCode.DENIED,
                        f"alias {tag} of {repo.name} is protected (rule {rule.alias!r}): only "
                        f"{' or '.join(who) or 'nobody'} may move it, and {principal.subject} is not among them",
                        detail={"reason": "PROTECTED_ALIAS", "alias": tag, "rule": rule.alias,
                                "roles": list(rule.roles), "members": list(rule.members)},
                    )  # fmt: skip
        if digest is None:
            return
        for gate in rules.gates:
            if not _matches(tag, gate.alias):
                continue
            if gate.required_referrer_types:
                have = self._store.referrer_types(repo.name, digest)
                missing = [t for t in gate.required_referrer_types if t not in have]
                if missing:
                    raise RegistryError(
                        ErrorCode.DENIED,
                        f"promotion gate {gate.alias!r} of {repo.name}: {tag} may only point at a manifest with a "
                        f"referrer of artifact type {', '.join(gate.required_referrer_types)}; {digest} has no "
                        f"referrer of type {', '.join(missing)}: attach one first (e.g. oras attach "
                        f"--artifact-type {missing[0]} {repo.name}@{digest} report.json)",
                        detail={"reason": "PROMOTION_GATE", "alias": tag, "rule": gate.alias,
                                "missing_referrer_types": missing, "digest": digest},
                    )  # fmt: skip
            first = gate.require_alias_first
            if first is not None and first != tag and not self._store.ever_pointed(repo.name, first, digest):
                raise RegistryError(
                    ErrorCode.DENIED,
                    f"promotion gate {gate.alias!r} of {repo.name}: {tag} may only point at a manifest that "
                    f"{first} pointed at first; {first} never pointed at {digest}: move {first} there first",
                    detail={"reason": "PROMOTION_GATE", "alias": tag, "rule": gate.alias,
                            "require_alias_first": first, "digest": digest},
                )  # fmt: skip

    def _check_limits(
        self,
        repository: str,
        tag: str,
        digest: str | None,
        limits: TagLimits,
        current: str | None,
        principal: Principal | None,
    ) -> None:
        who = principal.subject if principal is not None else "this caller"
        moving = current is not None and current != digest
        needed = Permission.MOVE_TAG if moving else Permission.PUSH
        verb = "move" if moving else "create"
        if needed not in limits:
            role = "writer" if moving else "pusher"
            raise RegistryError(
                ErrorCode.DENIED,
                f"{who} may not {verb} tag {tag} of {repository}: that needs the {role} role (or above) there",
                detail={"reason": "TAG_MOVE_DENIED", "tag": tag, "missing": needed.value},
            )
        allowed = limits[needed]
        if not tag_allowed(allowed, tag):
            shown = ", ".join(allowed or ())
            raise RegistryError(
                ErrorCode.DENIED,
                f"{who} may {verb} only tags matching {shown} in {repository} (the condition of its binding: "
                f"tags {shown}); {tag} does not match",
                detail={"reason": "TAG_CONDITION", "tag": tag, "allowed_tags": list(allowed or ())},
            )

    def _may_write_protected(self, repository: str, tag: str, rule: ProtectedAlias, principal: Principal) -> bool:
        if any(principal.matches(member) for member in rule.members):
            return True
        for binding in self._iam.repository_bindings(repository):
            if not tag_allowed(binding.tags, tag) or not any(principal.matches(m) for m in binding.members):
                continue
            if any(includes_role(binding.role, wanted) for wanted in rule.roles):
                return True
        return False

    def check_push(
        self, repository: str, tag: str, digest: str, *, subject: str | None, limits: TagLimits | None
    ) -> None:
        """The rules for a ``/v2`` push of ``tag`` (a mutable tag) at ``digest`` by a token of
        ``subject`` (``None``: auth is off) carrying ``limits``. A push that leaves the tag where
        it is changes nothing and is always allowed (CI retries stay idempotent)."""
        repo = self._meta.repositories.get(repository)
        if repo is None:
            return
        current = self._meta.manifests.resolve_tag(repository, tag)
        current_digest = None if current is None else current.digest
        if current_digest == digest:
            return
        principal = None
        if subject is not None:
            principal = self._principal_for(subject) or Principal("anonymous", "anonymous")
        self.check_write(repo, tag, digest, principal=principal, limits=limits, current=current_digest)

    def check_delete(self, repository: str, tags: Sequence[str], *, subject: str | None) -> None:
        """The protections a ``/v2`` delete of ``tags`` (a tag, or those a deleted manifest
        ends) must pass, for a token of ``subject`` (``None``: auth is off)."""
        repo = self._meta.repositories.get(repository)
        if repo is None or subject is None:
            return
        principal = self._principal_for(subject) or Principal("anonymous", "anonymous")
        for tag in tags:
            self.check_write(repo, tag, None, principal=principal, limits=None, current=None)

    # -- writing ---------------------------------------------------------------------------

    def _alias_name(self, repo: RepositoryRecord, alias: str) -> str:
        if not is_valid_tag(alias):
            raise ValidationFailed([("alias", f"{alias[:150]!r} is not a valid tag")])
        if tag_is_immutable(repo, alias):
            raise DeniedByState(
                f"{alias} is a version of {repo.name} (its immutable tag patterns cover it), not an alias: "
                "aliases are mutable tags",
                detail={"reason": "TAG_IMMUTABLE", "tag": alias},
            )
        return alias

    def resolve(self, repository: str, target: str) -> str:
        """The digest a target names: a digest of the repository, or one of its current tags."""
        if is_digest(target):
            digest = _digest(target, "target")
            if digest not in self._store.present(repository, [digest]):
                raise RegistryError(
                    ErrorCode.NOT_FOUND, f"manifest {digest} is not in {repository}", detail={"target": target}
                )
            return digest
        if not is_valid_tag(target):
            raise ValidationFailed([("target", f"{target[:150]!r} is neither a digest nor a valid tag")])
        record = self._meta.manifests.resolve_tag(repository, target)
        if record is None:
            raise RegistryError(
                ErrorCode.NOT_FOUND, f"version {target} of {repository} does not exist", detail={"target": target}
            )
        return record.digest

    def _limits(self, principal: Principal | None, repository: str) -> TagLimits | None:
        return None if principal is None else self._iam.tag_limits(principal, repository)

    async def move(
        self,
        repository: str,
        alias: str,
        target: str,
        *,
        actor: Actor,
        principal: Principal | None = None,
        expected_digest: str | None = None,
        reason: str | None = None,
    ) -> Alias:
        """Point ``alias`` at ``target`` (a version tag or a digest), if it points at
        ``expected_digest`` (when given; 409 otherwise), recording :class:`AliasMoved`."""

        def plan() -> tuple[RepositoryRecord, str, str]:
            repo = self._repo(repository)
            name = self._alias_name(repo, alias)
            digest = self.resolve(repository, target)
            self._admit(repo, name, digest, principal, expected_digest)
            return repo, name, digest

        repo, name, digest = await self._run(plan)  # reads off the event loop (PostgreSQL)
        return await self._write(repo, name, digest, actor, expected_digest, reason, "api")

    def _admit(
        self, repo: RepositoryRecord, alias: str, digest: str, principal: Principal | None, expected: str | None
    ) -> None:
        """The checks of a move before its transaction (which checks ``expected`` again)."""
        found = self._meta.manifests.resolve_tag(repo.name, alias)
        current = None if found is None else found.digest
        if expected is not None and current != expected:
            raise _conflict(repo.name, alias, expected, current)
        self.check_write(
            repo, alias, digest, principal=principal, limits=self._limits(principal, repo.name), current=current
        )

    def _check_may_move(self, repo: RepositoryRecord, alias: str, principal: Principal | None) -> None:
        """The checks of a move that do not depend on its target (the caller's tag permissions,
        protected aliases), before a rollback searches the history: a caller who may not move
        ``alias`` is refused as such, whether or not there is an earlier target."""
        found = self._meta.manifests.resolve_tag(repo.name, alias)
        if found is not None:  # a missing alias is rollback_target's "does not exist"
            limits = self._limits(principal, repo.name)
            # No digest: the gates, which judge the target, are left to _admit.
            self.check_write(repo, alias, None, principal=principal, limits=limits, current=found.digest)

    async def _write(
        self,
        repo: RepositoryRecord,
        alias: str,
        digest: str,
        actor: Actor,
        expected: str | None,
        reason: str | None,
        how: How,
    ) -> Alias:
        written: list[Event] = []

        def events(previous: str | None) -> list[Event]:
            written[:] = [
                AliasMoved(actor=actor, repository=repo.name, alias=alias, how=how, from_digest=previous,
                           to_digest=digest, reason=reason)
            ]  # fmt: skip
            return written

        try:
            await self._run(
                self._store.move, repo.name, alias, digest, expected=expected,
                change=TagChange(how, actor.subject, reason), events=events,
            )  # fmt: skip
        except TagMoveConflict as exc:
            raise _conflict(repo.name, alias, expected, exc.current) from None
        except TargetMissing:
            raise RegistryError(
                ErrorCode.NOT_FOUND, f"manifest {digest} is no longer in {repo.name}", detail={"digest": digest}
            ) from None
        log_events(written)
        return await self._run(self.get, repo.name, alias)

    def rollback_target(self, repository: str, alias: str, to: str | None) -> tuple[str, str]:
        """``(current digest, target digest)`` of a rollback: ``to`` when given (a version tag, a
        digest, or a former target whose manifest is gone: refused, naming the next candidate),
        else the most recent former target that differs from the current one and is still present."""
        current = self._meta.manifests.resolve_tag(repository, alias)
        if current is None:
            raise RegistryError(
                ErrorCode.NOT_FOUND, f"alias {alias} of {repository} does not exist", detail={"alias": alias}
            )
        former = [e for e in self._store.targets(repository, alias) if e.to_digest != current.digest]
        seen: set[str] = set()
        candidates = []
        for entry in former:
            assert entry.to_digest is not None
            if entry.to_digest not in seen:
                seen.add(entry.to_digest)
                candidates.append(entry)
        if to is None:
            for entry in candidates:
                if entry.manifest_present:
                    assert entry.to_digest is not None
                    return current.digest, entry.to_digest
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"alias {alias} of {repository} has no earlier target that is still present to roll back to",
                detail={"alias": alias},
            )
        if is_digest(to):
            digest = _digest(to, "to")
            if digest not in self._store.present(repository, [digest]):
                following = next(
                    (e.to_digest for e in candidates if e.manifest_present and e.to_digest != digest), None
                )
                hint = (
                    f"; the next candidate still present is {following}"
                    if following
                    else "; no earlier target is still present"
                )
                raise RegistryError(
                    ErrorCode.NOT_FOUND,
                    f"cannot roll {alias} of {repository} back to {digest}: its manifest was deleted{hint}",
                    detail={"alias": alias, "target": digest, "next_candidate": following},
                )
            return current.digest, digest
        return current.digest, self.resolve(repository, to)

    async def rollback(
        self,
        repository: str,
        alias: str,
        *,
        actor: Actor,
        principal: Principal | None = None,
        to: str | None = None,
        reason: str | None = None,
        expected_digest: str | None = None,
    ) -> Alias:
        """Point ``alias`` back (:meth:`rollback_target`), expecting it where it was read (or at
        ``expected_digest``): of two concurrent rollbacks one wins, the other gets 409."""

        def plan() -> tuple[RepositoryRecord, str, str, str]:
            repo = self._repo(repository)
            name = self._alias_name(repo, alias)
            self._check_may_move(repo, name, principal)
            current, target = self.rollback_target(repository, name, to)
            if expected_digest is not None and expected_digest != current:
                raise _conflict(repository, name, expected_digest, current)
            self._admit(repo, name, target, principal, current)
            return repo, name, current, target

        repo, name, current, target = await self._run(plan)
        return await self._write(repo, name, target, actor, current, reason, "rollback")

    async def delete(
        self,
        repository: str,
        alias: str,
        *,
        actor: Actor,
        principal: Principal | None = None,
        expected_digest: str | None = None,
        reason: str | None = None,
    ) -> None:
        current = await self._run(self._admit_delete, repository, alias, principal, expected_digest)
        event = TagDeleted(actor=actor, repository=repository, tag=alias)
        try:
            deleted = await self._run(
                self._store.delete, repository, alias, expected=current,
                change=TagChange("delete", actor.subject, reason), events=[event],
            )  # fmt: skip
        except TagMoveConflict as exc:
            raise _conflict(repository, alias, current, exc.current) from None
        if not deleted:
            raise RegistryError(ErrorCode.NOT_FOUND, f"alias {alias} of {repository} does not exist")
        log_events([event])

    def _admit_delete(
        self, repository: str, alias: str, principal: Principal | None, expected_digest: str | None
    ) -> str:
        """The checks of a delete before its transaction; the digest the alias points at."""
        repo = self._repo(repository)
        alias = self._alias_name(repo, alias)
        found = self._meta.manifests.resolve_tag(repository, alias)
        if found is None:
            raise RegistryError(
                ErrorCode.NOT_FOUND, f"alias {alias} of {repository} does not exist", detail={"alias": alias}
            )
        if expected_digest is not None and expected_digest != found.digest:
            raise _conflict(repository, alias, expected_digest, found.digest)
        limits = self._limits(principal, repository)
        if limits is not None and Permission.MOVE_TAG not in limits:
            who = principal.subject if principal is not None else "this caller"
            raise RegistryError(
                ErrorCode.DENIED, f"{who} may not delete alias {alias} of {repository}: that needs the writer role"
            )
        if limits is not None and not tag_allowed(limits[Permission.MOVE_TAG], alias):
            who = principal.subject if principal is not None else "this caller"
            raise RegistryError(
                ErrorCode.DENIED,
                f"{who} may change only tags matching {', '.join(limits[Permission.MOVE_TAG] or ())} "
                f"in {repository} (the condition of its binding); {alias} does not match",
                detail={"reason": "TAG_CONDITION", "tag": alias},
            )
        self.check_write(repo, alias, None, principal=principal, limits=None, current=found.digest)
        return found.digest
