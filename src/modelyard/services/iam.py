"""IAM policies (bindings with an etag) on the registry, compartments and repositories, and the
permissions they give a principal on a resource.

A repository's ``is_public`` and an ``allUsers`` reader binding on it are one fact seen two ways:
the binding is never stored, it is shown when the repository is public, and writing a policy
that contains it (or not) makes the repository public (or private).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.events import Actor, IamPolicyChanged
from modelyard.domain.principals import VersionConflictError
from modelyard.domain.reference import split_compartment
from modelyard.metadata.base import MetadataStore
from modelyard.policy.authorizer import (
    PUBLIC_READER,
    Binding,
    Permission,
    Principal,
    binding_problems,
    bindings_from,
    granted,
    tag_limits,
)
from modelyard.services.audit import log_events
from modelyard.services.runner import BlockingRunner

REGISTRY = "registry"


def compartment_resource(name: str) -> str:
    return f"compartment:{name}"


def repository_resource(name: str) -> str:
    return f"repository:{name}"


@dataclass(frozen=True, slots=True)
class PolicyView:
    bindings: list[Binding]
    etag: str


def _split_public(bindings: list[Binding]) -> tuple[list[Binding], bool]:
    """A repository policy's bindings without ``allUsers`` reader, and whether it had it.

    ``allUsers`` may come in a reader binding of its own or among other members (``iam
    add-binding --role reader`` on a public repository adds to the binding it shows); either
    way it is the repository's ``is_public``, never a stored binding that would make the
    repository public while ``is_public`` says private.
    """
    public = False
    stored = []
    for binding in bindings:
        members = binding.members
        if binding.role == PUBLIC_READER.role and binding.tags is None and "allUsers" in members:
            public = True
            members = tuple(m for m in members if m != "allUsers")
        if members:
            stored.append(Binding(binding.role, members, binding.tags))
    return stored, public


def _etag(version: int, public: bool) -> str:
    return f"v{version}{'p' if public else ''}"


_INLINE_NAMES = 4
T = TypeVar("T")


class IamService:
    def __init__(self, metadata: MetadataStore, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._run = runner.run

    # -- reading and writing policies ------------------------------------------------------

    def _public(self, resource: str) -> bool:
        if not resource.startswith("repository:"):
            return False
        repo = self._meta.repositories.get(resource.partition(":")[2])
        return repo is not None and repo.is_public

    def policy(self, resource: str) -> PolicyView:
        record = self._meta.policies.get(resource)
        public = self._public(resource)
        bindings = bindings_from(record.bindings)
        if public:
            bindings.append(PUBLIC_READER)
        return PolicyView(bindings, _etag(record.version, public))

    async def set_policy(self, resource: str, bindings: list[Binding], etag: str | None, *, actor: Actor) -> PolicyView:
        """Replace a policy; ``etag`` must be the one last read (optional only for a new policy).
        Records :class:`IamPolicyChanged` (the bindings as written) in the same transaction."""
        problems = binding_problems(bindings)
        if problems:
            detail = [{"field": f, "message": m} for f, m in problems]
            raise RegistryError(ErrorCode.VALIDATION_FAILED, f"invalid policy: {problems[0][1]}", detail=detail)
        current = self._meta.policies.get(resource)
        public_now = self._public(resource)
        current_etag = _etag(current.version, public_now)
        if etag is None and (current.version > 0 or public_now):
            raise RegistryError(
                ErrorCode.CONFLICT, f"this policy exists: send the etag you read ({current_etag}) to replace it"
            )
        if etag is not None and etag != current_etag:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"the policy changed since it was read (etag {etag}, now {current_etag}); read it again and reapply",
            )
        if resource.startswith("repository:"):
            stored, make_public = _split_public(bindings)
        else:
            # Only a repository turns an allUsers reader into its is_public flag; on the registry
            # or a compartment the binding is kept as written.
            stored, make_public = list(bindings), False
        if resource == REGISTRY and not any(b.role == "admin" and b.members for b in stored):
            raise RegistryError(ErrorCode.CONFLICT, "the registry policy must keep at least one admin binding")
        payload = [b.as_json() for b in stored]
        public = (resource.partition(":")[2], make_public) if resource.startswith("repository:") else None
        event = IamPolicyChanged(
            actor=actor,
            target=resource,
            bindings=tuple((b.role, b.members) for b in bindings),
            conditions=tuple((str(i), b.tags) for i, b in enumerate(bindings) if b.tags is not None),
        )
        try:  # bindings, is_public and the event in one transaction: never one without the others
            await self._run(
                self._meta.policies.put, resource, payload, current.version, public_repository=public, events=[event]
            )
        except VersionConflictError:
            raise RegistryError(ErrorCode.CONFLICT, "the policy changed while it was written; read it again") from None
        log_events([event])
        return self.policy(resource)

    # -- evaluating ------------------------------------------------------------------------

    def _granted(self, principal: Principal, resources: list[str], public: bool) -> frozenset[Permission]:
        bindings = [b for record in self._meta.policies.get_many(resources) for b in bindings_from(record.bindings)]
        if public:
            bindings.append(PUBLIC_READER)
        return granted(principal, bindings)

    def repository_bindings(self, name: str) -> list[Binding]:
        """Every binding in force on a repository: the registry's, its compartment's and its own
        (with the ``allUsers`` reader of a public repository)."""
        compartment, _ = split_compartment(name)
        repo = self._meta.repositories.get(name)
        resources = [REGISTRY]
        if compartment is not None:
            resources.append(compartment_resource(compartment))
        resources.append(repository_resource(name))
        bindings = [b for record in self._meta.policies.get_many(resources) for b in bindings_from(record.bindings)]
        if repo is not None and repo.is_public:
            bindings.append(PUBLIC_READER)
        return bindings

    def tag_limits(self, principal: Principal, name: str) -> dict[Permission, tuple[str, ...] | None]:
        """Which tags of repository ``name`` the principal may push and move (``policy.authorizer.tag_limits``)."""
        return tag_limits(principal, self.repository_bindings(name))

    def on_registry(self, principal: Principal) -> frozenset[Permission]:
        return self._granted(principal, [REGISTRY], False)

    def on_compartment(self, principal: Principal, compartment: str | None) -> frozenset[Permission]:
        resources = [REGISTRY] if compartment is None else [REGISTRY, compartment_resource(compartment)]
        return self._granted(principal, resources, False)

    def on_repository(self, principal: Principal, name: str) -> tuple[frozenset[Permission], bool]:
        """Permissions on a repository (inherited from its compartment and the registry) and whether it exists."""
        compartment, _ = split_compartment(name)
        repo = self._meta.repositories.get(name)
        resources = [REGISTRY]
        if compartment is not None:
            resources.append(compartment_resource(compartment))
        resources.append(repository_resource(name))
        return self._granted(principal, resources, repo is not None and repo.is_public), repo is not None

    def pull_filter(self, principal: Principal) -> Callable[[str], bool]:
        """Whether ``principal`` may pull each repository name, for listing many (the catalog).

        Permissions only add up (the registry's, the compartment's, the repository's), so pull
        on the registry admits every name with one check, and pull on a compartment every name
        in it with one check per compartment; only the rest is checked name by name. A page of
        a 10,000-repository catalog read three policies per name before (~40 ms a page).
        """
        if Permission.PULL in self.on_registry(principal):
            return lambda name: True
        compartments: dict[str | None, bool] = {}

        def readable(name: str) -> bool:
            compartment, _ = split_compartment(name)
            if compartment not in compartments:
                compartments[compartment] = Permission.PULL in self.on_compartment(principal, compartment)
            return compartments[compartment] or Permission.PULL in self.on_repository(principal, name)[0]

        return readable

    async def on_repositories(
        self, principal: Principal, names: list[str]
    ) -> dict[str, tuple[frozenset[Permission], bool]]:
        """:meth:`on_repository` for each name, in a worker thread (a token request may name many)."""

        def work() -> dict[str, tuple[frozenset[Permission], bool]]:
            return {name: self.on_repository(principal, name) for name in dict.fromkeys(names)}

        return await self._off_loop(work, len(names)) if names else {}

    async def tag_limits_on(
        self, principal: Principal, names: list[str]
    ) -> dict[str, dict[Permission, tuple[str, ...] | None]]:
        """:meth:`tag_limits` for each name, in a worker thread."""

        def work() -> dict[str, dict[Permission, tuple[str, ...] | None]]:
            return {name: self.tag_limits(principal, name) for name in dict.fromkeys(names)}

        return await self._off_loop(work, len(names)) if names else {}

    async def _off_loop(self, work: Callable[[], T], names: int) -> T:
        """Run ``work`` in a worker thread -- or inline, when it is a few local SQLite reads (a
        token request names a scope or two; the thread hop cost more than the reads, a tenth of
        a token request). On PostgreSQL, or for many names, always off the event loop."""
        if names <= _INLINE_NAMES and self._meta.reads_inline:
            return work()
        return await self._run(work)
