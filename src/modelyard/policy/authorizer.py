"""Who may do what: roles as documented sets of permissions, and IAM bindings over principals.

A binding ``{role, members}`` attached to the registry, a compartment or a repository grants
the role's permissions to its members there and below. Permissions are kept separate from
roles so custom roles can be added without touching the checks, which only ever ask for a
permission.

Roles:

============  =====================================================================
``reader``    pull, list tags and the catalog, read README and settings
``pusher``    reader + push new tags and create repositories; never moves a tag
              that exists (CI that may publish ``build-*`` but not move ``latest``)
``writer``    pusher + move (overwrite) mutable tags
``repoAdmin`` writer + delete tags/manifests/blobs, change repository settings,
              delete the repository, read IAM policies
``admin``     everything: IAM, compartments, registry configuration, principals, audit
============  =====================================================================

Members: ``user:<email or name>``, ``serviceAccount:<name>``, ``group:<name>``,
``allUsers`` (anyone, including anonymous) and ``allAuthenticatedUsers``.

Conditions: a binding may carry ``"condition": {"tags": ["build-*"]}``. It then lets its members
push (and, with ``writer`` and above, move) only tags matching one of the globs; everything else
the role grants (pulling, uploading blobs, pushing by digest) applies unchanged. So CI bound as
``pusher`` with ``build-*`` may publish ``build-42`` but never touch ``prod``
(:func:`tag_limits`, enforced by the token service, ``/v2`` and the admin API alike).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal


class Permission(enum.StrEnum):
    CATALOG = "registry.catalog"
    PULL = "repository.pull"
    PUSH = "repository.push"
    MOVE_TAG = "repository.tag.move"
    CREATE = "repository.create"
    DELETE = "repository.delete"
    CONFIGURE = "repository.configure"
    IAM_READ = "iam.read"
    IAM_WRITE = "iam.write"
    COMPARTMENT_MANAGE = "compartment.manage"
    REGISTRY_CONFIGURE = "registry.configure"
    PRINCIPALS_MANAGE = "principals.manage"
    AUDIT_READ = "audit.read"
    # Only the admin role holds it (on the registry, a compartment or a repository).
    WEBHOOKS_MANAGE = "webhooks.manage"


_READER = frozenset({Permission.PULL, Permission.CATALOG})
_PUSHER = _READER | {Permission.PUSH, Permission.CREATE}
_WRITER = _PUSHER | {Permission.MOVE_TAG}
_REPO_ADMIN = _WRITER | {Permission.DELETE, Permission.CONFIGURE, Permission.IAM_READ}

ROLES: Mapping[str, frozenset[Permission]] = {
    "reader": _READER,
    "pusher": _PUSHER,
    "writer": _WRITER,
    "repoAdmin": _REPO_ADMIN,
    "admin": frozenset(Permission),
}

# No whitespace and no control characters (spelled out: Python's "\s" has \x1c-\x1f, JSON Schema's has not).
MEMBER_PATTERN = re.compile(
    r"^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group):[^\s:\x00-\x1f\x7f-\x9f]{1,255})$"
)

PrincipalKind = Literal["user", "serviceAccount", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user (with email and groups), a service account, or anonymous."""

    kind: PrincipalKind
    name: str
    email: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def subject(self) -> str:
        """The token ``sub`` and audit actor: ``user:alice``, ``serviceAccount:ci@acme``, ``anonymous``."""
        return "anonymous" if self.kind == "anonymous" else f"{self.kind}:{self.name}"

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    def matches(self, member: str) -> bool:
        if member == "allUsers":
            return True
        if member == "allAuthenticatedUsers":
            return self.authenticated
        kind, _, value = member.partition(":")
        if kind == "user":
            return self.kind == "user" and value in (self.name, self.email)
        if kind == "serviceAccount":
            return self.kind == "serviceAccount" and value == self.name
        if kind == "group":
            return value in self.groups
        return False


ANONYMOUS = Principal("anonymous", "anonymous")


@dataclass(frozen=True, slots=True)
class Binding:
    role: str
    members: tuple[str, ...]
    # The binding's condition: the tag globs it is limited to (``None``: unconditional).
    tags: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, object]:
        """As a policy stores it."""
        raw: dict[str, object] = {"role": self.role, "members": list(self.members)}
        if self.tags is not None:
            raw["condition"] = {"tags": list(self.tags)}
        return raw


PUBLIC_READER = Binding("reader", ("allUsers",))


def bindings_from(raw: Iterable[Mapping[str, object]]) -> list[Binding]:
    """Bindings as a policy stores them (``{"role": ..., "members": [...]}``); a binding
    without a member list has no members."""
    result = []
    for item in raw:
        members = item.get("members")
        condition = item.get("condition")
        tags = condition.get("tags") if isinstance(condition, Mapping) else None
        result.append(
            Binding(
                str(item.get("role")),
                tuple(str(m) for m in members) if isinstance(members, list) else (),
                tuple(str(p) for p in tags) if isinstance(tags, list) else None,
            )
        )
    return result


def holds_role(principal: Principal, bindings: Iterable[Binding], role: str) -> bool:
    """Whether a binding of ``role`` names one of the principal's identities (as :func:`granted`
    matches them: name or email, a group, ``allUsers``, ``allAuthenticatedUsers``)."""
    return any(b.role == role and any(principal.matches(m) for m in b.members) for b in bindings)


def role_members(bindings: Iterable[Binding], role: str) -> list[str]:
    """Every member bound to ``role``, in binding order."""
    return [member for binding in bindings if binding.role == role for member in binding.members]


def granted(principal: Principal, bindings: Iterable[Binding]) -> frozenset[Permission]:
    """The union of the permissions of every role bound to one of the principal's identities."""
    permissions: set[Permission] = set()
    for binding in bindings:
        role = ROLES.get(binding.role)
        if role and any(principal.matches(member) for member in binding.members):
            permissions |= role
    return frozenset(permissions)


def binding_problems(bindings: Sequence[Binding]) -> list[tuple[str, str]]:
    """Validation of a policy: ``(field, message)`` for each unknown role or malformed member."""
    problems = []
    for index, binding in enumerate(bindings):
        if binding.role not in ROLES:
            problems.append((f"bindings.{index}.role", f"unknown role {binding.role!r}; roles: {', '.join(ROLES)}"))
        if not binding.members:
            problems.append((f"bindings.{index}.members", "a binding needs at least one member"))
        if binding.tags is not None and not binding.tags:
            problems.append((f"bindings.{index}.condition.tags", "a tag condition needs at least one pattern"))
        for pattern in binding.tags or ():
            if not TAG_GLOB.fullmatch(pattern):
                problems.append(
                    (f"bindings.{index}.condition.tags", f"invalid tag pattern {pattern!r}: a tag glob (*, ?, [...])")
                )
        for member in binding.members:
            if not MEMBER_PATTERN.fullmatch(member):  # not ``match``: "$" matches before a final "\n"
                problems.append(
                    (
                        f"bindings.{index}.members",
                        f"invalid member {member!r}: use user:EMAIL, serviceAccount:NAME, group:NAME, "
                        "allUsers or allAuthenticatedUsers",
                    )
                )
    return problems


# -- tag conditions ---------------------------------------------------------------------------

TAG_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,128}$")
# The permissions a binding's tag condition limits: writing tags. The rest of a role is not about tags.
TAG_SCOPED = (Permission.PUSH, Permission.MOVE_TAG)


def tag_limits(principal: Principal, bindings: Iterable[Binding]) -> dict[Permission, tuple[str, ...] | None]:
    """For each of :data:`TAG_SCOPED` the principal holds: ``None`` when some binding grants it
    without a condition, else the globs of the conditional bindings that grant it (the tags it
    may write). A permission the principal does not hold at all is absent."""
    limits: dict[Permission, tuple[str, ...] | None] = {}
    for binding in bindings:
        role = ROLES.get(binding.role)
        if not role or not any(principal.matches(member) for member in binding.members):
            continue
        for permission in TAG_SCOPED:
            if permission not in role:
                continue
            if binding.tags is None:
                limits[permission] = None
            elif permission not in limits:
                limits[permission] = binding.tags
            else:
                known = limits[permission]
                if known is not None:
                    limits[permission] = tuple(dict.fromkeys((*known, *binding.tags)))
    return limits


# The token actions that write tags, and the permission each needs.
_TAG_ACTIONS = {"push": Permission.PUSH, "overwrite": Permission.MOVE_TAG}


def tag_conditions(actions: Iterable[str], limits: Mapping[Permission, tuple[str, ...] | None]) -> dict[str, list[str]]:
    """The ``tags`` claim of a token's access entry: for each granted tag-writing action that
    only conditional bindings grant, the globs of the tags it may write (an action not named: any tag)."""
    conditions = {}
    for action in actions:
        permission = _TAG_ACTIONS.get(action)
        if permission is not None and limits.get(permission) is not None:
            conditions[action] = list(limits[permission] or ())
    return conditions


def limits_from_conditions(
    actions: Iterable[str], conditions: Mapping[str, Sequence[str]]
) -> dict[Permission, tuple[str, ...] | None]:
    """The inverse of :func:`tag_conditions`: what a token's entry lets its bearer write."""
    limits: dict[Permission, tuple[str, ...] | None] = {}
    for action in actions:
        permission = _TAG_ACTIONS.get(action)
        if permission is not None:
            found = conditions.get(action)
            limits[permission] = None if found is None else tuple(found)
    return limits


def tag_allowed(patterns: tuple[str, ...] | None, tag: str) -> bool:
    """Whether a limit of :func:`tag_limits` admits ``tag`` (``None``: any tag)."""
    return patterns is None or any(fnmatchcase(tag, p) for p in patterns)


def includes_role(granting: str, wanted: str) -> bool:
    """Whether holding ``granting`` gives everything ``wanted`` gives (``repoAdmin`` includes ``writer``)."""
    have, want = ROLES.get(granting), ROLES.get(wanted)
    return have is not None and want is not None and want <= have


# -- token actions (Docker token auth) ------------------------------------------------------

ACTION_PERMISSION: Mapping[str, Permission] = {
    "pull": Permission.PULL,
    "push": Permission.PUSH,
    "delete": Permission.DELETE,
}


def token_actions(requested: Iterable[str], permissions: frozenset[Permission], *, exists: bool) -> list[str]:
    """The actions of a ``repository`` scope a token may carry.

    ``*`` asks for everything allowed. Pushing to a repository that does not exist also needs
    ``repository.create``. A granted push carries ``overwrite`` too when the principal may move
    tags, so ``/v2`` can enforce that without a lookup.
    """
    wanted = set(requested)
    if "*" in wanted:
        wanted = {"pull", "push", "delete"}
    actions: list[str] = [a for a in ("pull", "push", "delete") if a in wanted and ACTION_PERMISSION[a] in permissions]
    if "push" in actions and not exists and Permission.CREATE not in permissions:
        actions.remove("push")
    if "push" in actions and Permission.MOVE_TAG in permissions:
        actions.append("overwrite")
    return actions
