"""Compartments (the first path component of a repository) and the create-on-first-push settings."""

from __future__ import annotations

from typing import Any

from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.events import (
    Actor,
    CompartmentConfigured,
    CompartmentCreated,
    CompartmentDeleted,
    CompartmentUpdated,
    RegistryConfigured,
)
from modelyard.domain.records import AlreadyExistsError, CompartmentRecord, NotEmptyError, RegistryConfigRecord
from modelyard.domain.reference import validate_name
from modelyard.metadata.base import MetadataStore
from modelyard.services.audit import log_events
from modelyard.services.runner import BlockingRunner


def compartment_not_found(name: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"compartment {name!r} does not exist", detail={"compartment": name})


def validate_compartment_name(name: str) -> str:
    """A compartment name is one repository-name component (no ``/``)."""
    if "/" in name:
        raise RegistryError(
            ErrorCode.VALIDATION_FAILED,
            f"compartment name {name!r} must be a single path component (no '/')",
            detail=[{"field": "name", "message": "must not contain '/'"}],
        )
    try:
        validate_name(name)
    except RegistryError as exc:
        raise RegistryError(
            ErrorCode.VALIDATION_FAILED, exc.message, detail=[{"field": "name", "message": exc.message}]
        ) from None
    return name


class CompartmentService:
    def __init__(self, metadata: MetadataStore, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._run = runner.run

    def get(self, name: str) -> CompartmentRecord:
        record = self._meta.compartments.get(name)
        if record is None:
            raise compartment_not_found(name)
        return record

    def page(self, limit: int | None, last: str | None) -> list[CompartmentRecord]:
        return self._meta.compartments.page(limit, last)

    async def create(
        self, name: str, description: str, create_on_first_push: bool | None, *, actor: Actor
    ) -> CompartmentRecord:
        validate_compartment_name(name)
        event = CompartmentCreated(actor=actor, compartment=name)
        try:
            record = await self._run(
                self._meta.compartments.create, name, description, create_on_first_push, events=[event]
            )
        except AlreadyExistsError:
            raise RegistryError(
                ErrorCode.CONFLICT, f"compartment {name!r} already exists", detail={"compartment": name}
            ) from None
        log_events([event])
        return record

    async def update(self, name: str, changes: dict[str, Any], *, actor: Actor) -> CompartmentRecord:
        event = CompartmentUpdated(actor=actor, compartment=name, fields=tuple(sorted(changes)))
        return await self._update(name, changes, event)

    async def configure(self, name: str, create_on_first_push: bool | None, *, actor: Actor) -> CompartmentRecord:
        """Set whether a push may create repositories in the compartment (``None``: as the registry)."""
        event = CompartmentConfigured(
            actor=actor, compartment=name, create_repository_on_first_push=create_on_first_push
        )
        return await self._update(name, {"create_repository_on_first_push": create_on_first_push}, event)

    async def _update(
        self, name: str, changes: dict[str, Any], event: CompartmentUpdated | CompartmentConfigured
    ) -> CompartmentRecord:
        record = await self._run(self._meta.compartments.update, name, changes, events=[event])
        if record is None:
            raise compartment_not_found(name)
        log_events([event])
        return record

    async def delete(self, name: str, *, actor: Actor) -> None:
        event = CompartmentDeleted(actor=actor, compartment=name)
        try:
            found = await self._run(self._meta.compartments.delete, name, events=[event])
        except NotEmptyError as exc:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"compartment {name!r} still holds {exc}; delete them first",
                detail={"compartment": name},
            ) from None
        if not found:
            raise compartment_not_found(name)
        log_events([event])

    def registry_config(self) -> RegistryConfigRecord:
        return self._meta.registry_config.get()

    async def set_registry_config(
        self, create_repository: bool, create_compartment: bool, *, actor: Actor
    ) -> RegistryConfigRecord:
        event = RegistryConfigured(
            actor=actor,
            create_repository_on_first_push=create_repository,
            create_compartment_on_first_push=create_compartment,
        )
        record = await self._run(self._meta.registry_config.put, create_repository, create_compartment, events=[event])
        log_events([event])
        return record

    def creates_on_first_push(self, record: CompartmentRecord) -> bool:
        """The effective setting: the compartment's own, else the registry default."""
        if record.create_repository_on_first_push is not None:
            return record.create_repository_on_first_push
        return self.registry_config().create_repository_on_first_push
