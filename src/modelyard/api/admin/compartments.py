"""``/api/v1/compartments`` and the registry-level ``/api/v1/configuration``."""

from __future__ import annotations

from modelyard.api.admin import views
from modelyard.api.admin.framework import LIMIT, PAGE, Call, Operation
from modelyard.domain.records import CompartmentRecord
from modelyard.policy.authorizer import Permission
from modelyard.schemas import admin as schemas
from modelyard.services.listing import filtered_page


async def list_compartments(call: Call) -> schemas.CompartmentPage:
    records, more = await call.registry.read(
        filtered_page,
        call.registry.compartments.page,
        call.limit(),
        call.page(),
        lambda r: call.can_now(Permission.CATALOG, "compartment", r.name),  # off the loop with the page's reads
        lambda r: r.name,
    )
    next_page = records[-1].name if more else None
    return schemas.CompartmentPage(items=[views.compartment(r) for r in records], next_page=next_page)


async def create_compartment(call: Call) -> schemas.Compartment:
    body: schemas.CompartmentCreate = call.body
    await call.require(Permission.COMPARTMENT_MANAGE)
    record = await call.registry.compartments.create(
        body.name, body.description, body.is_repository_created_on_first_push, actor=call.actor
    )
    return views.compartment(record)


async def get_compartment(call: Call) -> schemas.Compartment:
    name = call.path("compartment_id")
    await call.require(Permission.CATALOG, "compartment", name)
    return views.compartment(await call.registry.read(call.registry.compartments.get, name))


async def update_compartment(call: Call) -> schemas.Compartment:
    body: schemas.CompartmentUpdate = call.body
    await call.require(Permission.COMPARTMENT_MANAGE, "compartment", call.path("compartment_id"))
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    return views.compartment(
        await call.registry.compartments.update(call.path("compartment_id"), changes, actor=call.actor)
    )


async def delete_compartment(call: Call) -> None:
    await call.require(Permission.COMPARTMENT_MANAGE, "compartment", call.path("compartment_id"))
    await call.registry.compartments.delete(call.path("compartment_id"), actor=call.actor)


async def _configuration_view(call: Call, name: str) -> schemas.CompartmentConfigurationView:
    service = call.registry.compartments

    def read() -> tuple[CompartmentRecord, bool]:
        record = service.get(name)
        return record, service.creates_on_first_push(record)

    record, effective = await call.registry.read(read)
    return schemas.CompartmentConfigurationView(
        compartment_id=record.name,
        is_repository_created_on_first_push=record.create_repository_on_first_push,
        effective_is_repository_created_on_first_push=effective,
    )


async def get_compartment_configuration(call: Call) -> schemas.CompartmentConfigurationView:
    await call.require(Permission.CATALOG, "compartment", call.path("compartment_id"))
    return await _configuration_view(call, call.path("compartment_id"))


async def put_compartment_configuration(call: Call) -> schemas.CompartmentConfigurationView:
    body: schemas.CompartmentConfiguration = call.body
    name = call.path("compartment_id")
    await call.require(Permission.COMPARTMENT_MANAGE, "compartment", name)
    await call.registry.compartments.configure(name, body.is_repository_created_on_first_push, actor=call.actor)
    return await _configuration_view(call, name)


async def get_registry_configuration(call: Call) -> schemas.RegistryConfiguration:
    call.require_authenticated()
    record = await call.registry.read(call.registry.compartments.registry_config)
    return schemas.RegistryConfiguration(
        is_repository_created_on_first_push=record.create_repository_on_first_push,
        is_compartment_created_on_first_push=record.create_compartment_on_first_push,
    )


async def put_registry_configuration(call: Call) -> schemas.RegistryConfiguration:
    body: schemas.RegistryConfiguration = call.body
    await call.require(Permission.REGISTRY_CONFIGURE)
    await call.registry.compartments.set_registry_config(
        body.is_repository_created_on_first_push, body.is_compartment_created_on_first_push, actor=call.actor
    )
    return await get_registry_configuration(call)


BASE = "/api/v1/compartments"
ONE = BASE + "/{compartment_id}"
TAG = "compartments"

OPERATIONS = [
    Operation("GET", BASE, "listCompartments", "List compartments", TAG, list_compartments,
              response=schemas.CompartmentPage, query=(LIMIT, PAGE), errors=(422,)),
    Operation("POST", BASE, "createCompartment", "Create a compartment", TAG, create_compartment,
              body=schemas.CompartmentCreate, response=schemas.Compartment, status=201, errors=(409, 422)),
    Operation("GET", ONE, "getCompartment", "Get a compartment", TAG, get_compartment,
              response=schemas.Compartment, errors=(404,)),
    Operation("PATCH", ONE, "updateCompartment", "Update a compartment", TAG, update_compartment,
              body=schemas.CompartmentUpdate, response=schemas.Compartment),
    Operation("DELETE", ONE, "deleteCompartment", "Delete an empty compartment", TAG, delete_compartment,
              status=204, errors=(404, 409)),
    Operation("GET", ONE + "/configuration", "getCompartmentConfiguration",
              "Get a compartment's configuration", TAG, get_compartment_configuration,
              response=schemas.CompartmentConfigurationView, errors=(404,)),
    Operation("PUT", ONE + "/configuration", "putCompartmentConfiguration",
              "Set a compartment's configuration", TAG, put_compartment_configuration,
              body=schemas.CompartmentConfiguration, response=schemas.CompartmentConfigurationView),
    Operation("GET", "/api/v1/configuration", "getRegistryConfiguration", "Get the registry-level configuration",
              "configuration", get_registry_configuration, response=schemas.RegistryConfiguration, errors=()),
    Operation("PUT", "/api/v1/configuration", "putRegistryConfiguration", "Set the registry-level configuration",
              "configuration", put_registry_configuration, body=schemas.RegistryConfiguration,
              response=schemas.RegistryConfiguration, errors=(422,)),
]  # fmt: skip
