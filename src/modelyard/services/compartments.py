"""Compartments (the first path component of a repository) and the create-on-first-push settings."""

from __future__ import annotations

from typing import Any

from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.records import AlreadyExistsError, CompartmentRecord, NotEmptyError, RegistryConfigRecord
from modelyard.domain.reference import validate_name
from modelyard.metadata.base import MetadataStore
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

    async def create(self, name: str, description: str, create_on_first_push: bool | None) -> CompartmentRecord:
        validate_compartment_name(name)
        try:
            return await self._run(self._meta.compartments.create, name, description, create_on_first_push)
        except AlreadyExistsError:
            raise RegistryError(
                ErrorCode.CONFLICT, f"compartment {name!r} already exists", detail={"compartment": name}
            ) from None

    async def update(self, name: str, changes: dict[str, Any]) -> CompartmentRecord:
        record = await self._run(self._meta.compartments.update, name, changes)
        if record is None:
            raise compartment_not_found(name)
        return record

    async def delete(self, name: str) -> None:
        try:
            found = await self._run(self._meta.compartments.delete, name)
        except NotEmptyError as exc:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"compartment {name!r} still holds {exc}; delete them first",
                detail={"compartment": name},
            ) from None
        if not found:
            raise compartment_not_found(name)

    def registry_config(self) -> RegistryConfigRecord:
        return self._meta.registry_config.get()

    async def set_registry_config(self, create_repository: bool, create_compartment: bool) -> RegistryConfigRecord:
        return await self._run(self._meta.registry_config.put, create_repository, create_compartment)

    def creates_on_first_push(self, record: CompartmentRecord) -> bool:
        """The effective setting: the compartment's own, else the registry default."""
        if record.create_repository_on_first_push is not None:
            return record.create_repository_on_first_push
        return self.registry_config().create_repository_on_first_push
