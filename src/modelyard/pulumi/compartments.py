"""Compartments and the create-on-first-push settings (registry-wide and per compartment)."""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.domain.reference import COMPONENT_PATTERN
from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.resource import RegistryResource
from modelyard.schemas import admin as schemas

_COMPONENT = re.compile(f"^{COMPONENT_PATTERN}$")


def component_name(value: str) -> str | None:
    if len(value) > 255 or not _COMPONENT.match(value):
        return "must be one lowercase path component (letters, digits and . _ -), e.g. 'acme'"
    return None


class CompartmentProvider(RegistryProvider):
    TYPE = "modelyard:Compartment"
    ARGS = {
        "name": Arg("str", required=True, replaces=True, validate=component_name),
        "description": Arg("str"),
        "is_repository_created_on_first_push": Arg("bool"),
    }
    OUTPUTS = ("repository_count", "time_created")
    DELETE_BEFORE_REPLACE = True

    def _outs(self, found: schemas.Compartment) -> dict[str, Any]:
        config = self.call("read", self.client.get_compartment_configuration, found.name)
        return {
            "name": found.name,
            "description": found.description,
            "is_repository_created_on_first_push": config.is_repository_created_on_first_push,
            "repository_count": found.repository_count,
            "time_created": found.time_created.isoformat(),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = schemas.CompartmentCreate(
            name=props["name"],
            description=props.get("description", ""),
            is_repository_created_on_first_push=props.get("is_repository_created_on_first_push"),
        )
        found = self.call(f"{props['name']} create", self.client.create_compartment, spec)
        return CreateResult(found.name, self._outs(found))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        found = self.find(self.client.get_compartment, id_)
        if found is None:
            return self.gone()
        outs = self._outs(found)
        return ReadResult(found.name, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if "description" in news:
            changes = schemas.CompartmentUpdate(description=news["description"])
            self.call(f"{id_} update", self.client.update_compartment, id_, changes)
        if "is_repository_created_on_first_push" in news:
            config = schemas.CompartmentConfiguration(
                is_repository_created_on_first_push=news["is_repository_created_on_first_push"]
            )
            self.call(f"{id_} update", self.client.set_compartment_configuration, id_, config)
        return UpdateResult(self._outs(self.call("read", self.client.get_compartment, id_)))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if self.find(self.client.get_compartment, id_) is not None:
            self.call(f"{id_} delete", self.client.delete_compartment, id_)


class Compartment(RegistryResource, module="modelyard", name="Compartment"):
    """A compartment (the first path component of its repositories). Renaming replaces it;
    deleting it fails while it holds repositories."""

    PROVIDER = CompartmentProvider
    name: pulumi.Output[str]
    description: pulumi.Output[str]
    is_repository_created_on_first_push: pulumi.Output[bool | None]
    repository_count: pulumi.Output[int]
    time_created: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        name: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        is_repository_created_on_first_push: pulumi.Input[bool] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"name": name, "description": description,
                "is_repository_created_on_first_push": is_repository_created_on_first_push, **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)


class CompartmentConfigurationProvider(RegistryProvider):
    """Whether pushing to a missing repository of the compartment creates it (``None``:
    inherit the registry default). Deleting the resource sets it back to inherit."""

    TYPE = "modelyard:CompartmentConfiguration"
    ARGS = {
        "compartment": Arg("str", required=True, replaces=True, validate=component_name),
        "is_repository_created_on_first_push": Arg("bool"),
    }
    OUTPUTS = ("effective_is_repository_created_on_first_push",)

    def _outs(self, view: schemas.CompartmentConfigurationView) -> dict[str, Any]:
        return {
            "compartment": view.compartment_id,
            "is_repository_created_on_first_push": view.is_repository_created_on_first_push,
            "effective_is_repository_created_on_first_push": view.effective_is_repository_created_on_first_push,
        }

    def _set(self, name: str, value: bool | None) -> dict[str, Any]:
        config = schemas.CompartmentConfiguration(is_repository_created_on_first_push=value)
        return self._outs(self.call(f"{name} configure", self.client.set_compartment_configuration, name, config))

    def create(self, props: dict[str, Any]) -> CreateResult:
        name = props["compartment"]
        return CreateResult(name, self._set(name, props.get("is_repository_created_on_first_push")))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        view = self.find(self.client.get_compartment_configuration, id_)
        if view is None:
            return self.gone()
        outs = self._outs(view)
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._set(id_, news.get("is_repository_created_on_first_push")))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if self.find(self.client.get_compartment, id_) is not None:
            self._set(id_, None)


class CompartmentConfiguration(RegistryResource, module="modelyard", name="CompartmentConfiguration"):
    PROVIDER = CompartmentConfigurationProvider
    compartment: pulumi.Output[str]
    is_repository_created_on_first_push: pulumi.Output[bool | None]
    effective_is_repository_created_on_first_push: pulumi.Output[bool]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        compartment: pulumi.Input[str] | None = None,
        is_repository_created_on_first_push: pulumi.Input[bool] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"compartment": compartment,
                "is_repository_created_on_first_push": is_repository_created_on_first_push, **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)


REGISTRY_ID = "registry"


class RegistryConfigurationProvider(RegistryProvider):
    """The registry-wide defaults. There is one: its id is ``registry``. An argument left out
    keeps the registry's value; deleting the resource leaves the settings as they are."""

    TYPE = "modelyard:RegistryConfiguration"
    ARGS = {
        "is_repository_created_on_first_push": Arg("bool"),
        "is_compartment_created_on_first_push": Arg("bool"),
    }

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        current: schemas.RegistryConfiguration = self.call("read", self.client.get_configuration)
        wanted = current.model_copy(update={key: props[key] for key in self.ARGS if props.get(key) is not None})
        if wanted != current:
            current = self.call("update", self.client.set_configuration, wanted)
        return current.model_dump()

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(REGISTRY_ID, self._apply(props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        outs = self.call("read", self.client.get_configuration).model_dump()
        return ReadResult(REGISTRY_ID, outs, outs)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(news))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """The registry keeps its settings (there is no "unset" for a registry)."""


class RegistryConfiguration(RegistryResource, module="modelyard", name="RegistryConfiguration"):
    PROVIDER = RegistryConfigurationProvider
    is_repository_created_on_first_push: pulumi.Output[bool]
    is_compartment_created_on_first_push: pulumi.Output[bool]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        is_repository_created_on_first_push: pulumi.Input[bool] | None = None,
        is_compartment_created_on_first_push: pulumi.Input[bool] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"is_repository_created_on_first_push": is_repository_created_on_first_push,
                "is_compartment_created_on_first_push": is_compartment_created_on_first_push, **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)
