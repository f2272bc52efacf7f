"""Repositories: the control plane (create, configure, delete, list, versions) and the push gate
that decides whether a push may create a repository that does not exist yet."""

from __future__ import annotations

import contextlib
from typing import Any

from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import Actor, RepositoryCreated, RepositoryDeleted, RepositoryUpdated
from modelyard.domain.records import (
    AlreadyExistsError,
    RepositoryDetails,
    RepositoryFilter,
    RepositoryRecord,
    RepositorySettings,
    VersionRecord,
)
from modelyard.domain.reference import split_compartment, validate_name
from modelyard.metadata.base import MetadataStore
from modelyard.services.audit import log_events
from modelyard.services.compartments import CompartmentService, validate_compartment_name
from modelyard.services.runner import BlockingRunner


def repository_not_found(name: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"repository {name!r} does not exist", detail={"repository": name})


def full_name(compartment: str | None, display_name: str) -> str:
    """The repository name ``compartment/display_name`` (just ``display_name`` in the root
    compartment), or :class:`ValidationFailed` naming the field that breaks the rules: lowercase
    (as OCI clients require), a compartment of one component (or ``"a/b"`` + ``"c"`` would
    silently land in compartment ``a`` as ``b/c``), a root-compartment repository of one
    component, and the OCI name grammar."""
    if display_name != display_name.lower():
        raise ValidationFailed(
            [("display_name", f"must be lowercase, as OCI clients require: use {display_name.lower()!r}")]
        )
    if compartment is None:
        if "/" in display_name:
            raise ValidationFailed(
                [("display_name", "a root-compartment repository is one path component; set compartment_id")]
            )
        name = display_name
    else:
        try:
            validate_compartment_name(compartment)
        except RegistryError as exc:
            raise ValidationFailed([("compartment_id", exc.message)]) from None
        name = f"{compartment}/{display_name}"
    try:
        return validate_name(name)
    except RegistryError as exc:
        raise ValidationFailed([("display_name", exc.message)]) from None


class RepositoryService:
    def __init__(self, metadata: MetadataStore, compartments: CompartmentService, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._compartments = compartments
        self._run = runner.run

    # -- the push gate ---------------------------------------------------------------------

    async def require_for_push(
        self, name: str, pushed_by: str | None = None, *, actor: Actor | None = None
    ) -> RepositoryRecord:
        """The repository a push writes to, created now if its compartment allows that
        (recording :class:`RepositoryCreated` with ``on_push``).

        Refused with ``NAME_UNKNOWN`` and a message saying how to create the repository or
        change the setting.
        """
        record = self._meta.repositories.get(name)
        if record is not None:
            return record
        self.check_push_allowed(name)
        who = actor or Actor(pushed_by or "anonymous")
        event = RepositoryCreated(actor=who, repository=name, on_push=True)
        with contextlib.suppress(AlreadyExistsError):  # another push may have created it first
            await self._run(
                self._meta.repo_admin.create,
                name,
                RepositorySettings(),
                pushed_by,
                create_compartment=True,
                events=[event],
            )
            log_events([event])
        record = self._meta.repositories.get(name)
        assert record is not None
        return record

    def check_push_allowed(self, name: str) -> None:
        """Raise ``NAME_UNKNOWN`` if ``name`` does not exist and a push may not create it.

        Creates nothing: a manifest push asks this before checking its blobs, so a push to a
        repository that can never exist is told so rather than to push blobs first.
        """
        if self._meta.repositories.get(name) is not None:
            return
        compartment, _ = split_compartment(name)
        config = self._meta.registry_config.get()
        how = f"create it first (modelyard repo create {name})"
        if compartment is None:
            if not config.create_repository_on_first_push:
                raise RegistryError(
                    ErrorCode.NAME_UNKNOWN,
                    f"repository {name} does not exist and the registry does not create root-compartment "
                    f"repositories on first push: {how}, or enable it "
                    "(modelyard config set --create-on-first-push)",
                    detail={"name": name},
                )
            return
        record = self._meta.compartments.get(compartment)
        if record is None:
            missing = f"repository {name} does not exist, nor does its compartment {compartment}, and the registry"
            if not config.create_compartment_on_first_push:
                raise RegistryError(
                    ErrorCode.NAME_UNKNOWN,
                    f"{missing} does not create compartments on first push: create it (modelyard compartment "
                    f"create {compartment} --create-on-first-push), or enable it "
                    "(modelyard config set --create-compartment-on-first-push)",
                    detail={"name": name, "compartment": compartment},
                )
            if not config.create_repository_on_first_push:
                # Advice that names the compartment as existing would fail: it does not exist yet.
                raise RegistryError(
                    ErrorCode.NAME_UNKNOWN,
                    f"{missing} does not create repositories on first push: create the compartment allowing it "
                    f"(modelyard compartment create {compartment} --create-on-first-push), or enable it "
                    "for the whole registry (modelyard config set --create-on-first-push)",
                    detail={"name": name, "compartment": compartment},
                )
            return
        if not self._compartments.creates_on_first_push(record):
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                f"repository {name} does not exist and compartment {compartment} does not create repositories "
                f"on first push: {how}, or enable it "
                f"(modelyard compartment update {compartment} --create-on-first-push)",
                detail={"name": name, "compartment": compartment},
            )

    # -- the control plane -----------------------------------------------------------------

    def get(self, name: str) -> RepositoryDetails:
        record = self._meta.repo_admin.details(name)
        if record is None:
            raise repository_not_found(name)
        return record

    def policy(self, name: str) -> RepositoryRecord | None:
        """The access and tag policy of a repository (``None`` if it does not exist)."""
        return self._meta.repositories.get(name)

    def search(self, where: RepositoryFilter, limit: int | None, last: str | None) -> list[RepositoryDetails]:
        return self._meta.repo_admin.search(where, limit, last)

    async def create(
        self,
        compartment: str | None,
        display_name: str,
        settings: RepositorySettings,
        created_by: str | None,
        *,
        actor: Actor,
    ) -> RepositoryDetails:
        """Create ``display_name`` in ``compartment`` (named as :func:`full_name` says) explicitly;
        the compartment must exist (the root compartment always does)."""
        name = full_name(compartment, display_name)
        event = RepositoryCreated(actor=actor, repository=name)
        try:
            created = await self._run(
                self._meta.repo_admin.create, name, settings, created_by, create_compartment=False, events=[event]
            )
        except AlreadyExistsError:
            raise RegistryError(
                ErrorCode.CONFLICT, f"repository {name!r} already exists", detail={"repository": name}
            ) from None
        except LookupError:
            compartment, _ = split_compartment(name)
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"compartment {compartment!r} does not exist; create it first",
                detail={"compartment": compartment},
            ) from None
        log_events([event])
        return created

    async def update(self, name: str, changes: dict[str, Any], *, actor: Actor) -> RepositoryDetails:
        event = RepositoryUpdated(actor=actor, repository=name, fields=tuple(sorted(changes)))
        record = await self._run(self._meta.repo_admin.update, name, changes, events=[event])
        if record is None:
            raise repository_not_found(name)
        if changes:
            log_events([event])
        return record

    async def delete(self, name: str, *, actor: Actor) -> None:
        event = RepositoryDeleted(actor=actor, repository=name)
        if not await self._run(self._meta.repo_admin.delete, name, events=[event]):
            raise repository_not_found(name)
        log_events([event])

    def versions(self, name: str, limit: int | None, last: str | None) -> list[VersionRecord]:
        self.get(name)
        return self._meta.repo_admin.versions(name, limit, last)
