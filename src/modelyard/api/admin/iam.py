"""IAM policies: ``/api/v1/iam`` (registry), ``/api/v1/compartments/{c}/iam``,
``/api/v1/repositories/{r}/-/iam``, read and replaced with an etag."""

from __future__ import annotations

from modelyard.api.admin.framework import Call, Operation
from modelyard.policy.authorizer import Binding, Permission
from modelyard.schemas import admin as schemas
from modelyard.services.iam import REGISTRY, PolicyView, compartment_resource, repository_resource


def _view(policy: PolicyView) -> schemas.Policy:
    return schemas.Policy(
        bindings=[
            schemas.BindingModel(
                role=b.role,
                members=list(b.members),
                condition=None if b.tags is None else schemas.BindingCondition(tags=list(b.tags)),
            )
            for b in policy.bindings
        ],
        etag=policy.etag,
    )


def _target(call: Call, permission: Permission) -> str:
    """The policy's resource, once the caller may use ``permission`` on it and it exists.

    Runs off the event loop (``registry.read``): it checks and reads. Permission first: a
    compartment or repository the caller may not see answers the same whether it exists or not.
    """
    if "compartment_id" in call.request.match_info:
        name = call.path("compartment_id")
        call.require_now(permission, "compartment", name)
        call.registry.compartments.get(name)
        return compartment_resource(name)
    if "repository" in call.request.match_info:
        name = call.path("repository")
        call.require_now(permission, "repository", name)
        call.registry.repositories.get(name)
        return repository_resource(name)
    call.require_now(permission)
    return REGISTRY


async def get_policy(call: Call) -> schemas.Policy:
    def read() -> PolicyView:
        return call.registry.iam.policy(_target(call, Permission.IAM_READ))

    return _view(await call.registry.read(read))


async def set_policy(call: Call) -> schemas.Policy:
    resource = await call.registry.read(_target, call, Permission.IAM_WRITE)
    body: schemas.Policy = call.body
    bindings = [
        Binding(b.role, tuple(b.members), None if b.condition is None else tuple(b.condition.tags))
        for b in body.bindings
    ]
    return _view(await call.registry.iam.set_policy(resource, bindings, body.etag, actor=call.actor))


def _pair(path: str, what: str, suffix: str) -> list[Operation]:
    return [
        Operation("GET", path, f"get{suffix}Policy", f"Get the IAM policy of {what}", "iam", get_policy,
                  response=schemas.Policy, errors=(404,)),
        Operation("PUT", path, f"set{suffix}Policy", f"Replace the IAM policy of {what} (send the etag)", "iam",
                  set_policy, body=schemas.Policy, response=schemas.Policy, errors=(404, 409, 422)),
    ]  # fmt: skip


OPERATIONS = [
    *_pair("/api/v1/iam", "the registry", "Registry"),
    *_pair("/api/v1/compartments/{compartment_id}/iam", "a compartment", "Compartment"),
    *_pair("/api/v1/repositories/{repository:.+}/-/iam", "a repository", "Repository"),
]
