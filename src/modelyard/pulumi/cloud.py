"""What the cloud-shaped modules share: native providers borrowed with the same connection, and
compartments that exist before the cloud's resources are declared in them."""

from __future__ import annotations

from typing import TypeVar

from modelyard.pulumi.provider import ModelyardError, RegistryProvider
from modelyard.schemas import admin as schemas

P = TypeVar("P", bound=RegistryProvider)


def borrow(owner: RegistryProvider, kind: type[P]) -> P:
    """A native provider that talks through ``owner``'s connection (same config, same client)."""
    native = kind()
    native._config = owner._config
    native._connection = owner.connection
    native._client = owner.client
    return native


def ensure_compartment(owner: RegistryProvider, name: str, *, create_on_first_push: bool | None = None) -> bool:
    """Create compartment ``name`` when it does not exist (a cloud's compartments and projects
    exist before anything is declared in them); ``True`` when it was created. An existing
    compartment is left as it is."""
    if owner.find(owner.client.get_compartment, name) is not None:
        return False
    spec = schemas.CompartmentCreate(name=name, is_repository_created_on_first_push=create_on_first_push)
    try:
        owner.call(f"compartment {name} create", owner.client.create_compartment, spec)
    except ModelyardError:
        if owner.find(owner.client.get_compartment, name) is None:  # not a lost race: a real refusal
            raise
        return False
    return True
