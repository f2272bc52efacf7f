"""``gcp.storage``: BucketIAMBinding and BucketIAMMember on a registry's bucket, i.e. IAM on the
project's compartment, with GCP roles mapped onto modelyard's."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.pulumi.cloud import borrow
from modelyard.pulumi.gcp import roles
from modelyard.pulumi.iam import IamBindingProvider, IamMemberProvider
from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.resource import RegistryResource


def _scope(bucket: str) -> dict[str, Any]:
    return {"compartment": roles.project_of_bucket(bucket).lower()}


def _split(id_: str) -> tuple[str, list[str]]:
    """``b/BUCKET ROLE [MEMBER]`` (the ids ``pulumi_gcp`` imports) -> bucket and the rest."""
    bucket, *rest = id_.split(" ")
    return bucket.removeprefix("b/"), rest


class BucketIAMBindingProvider(RegistryProvider):
    TYPE = "gcp:storage:BucketIAMBinding"
    ARGS = {
        "bucket": Arg("str", required=True, replaces=True),
        "role": Arg("str", required=True, replaces=True, validate=roles.role),
        "members": Arg("list[str]", required=True, validate=roles.members),
        "condition": Arg("dict", unsupported=roles.NO_CONDITIONS),
    }
    OUTPUTS = ("etag",)

    def _outs(self, bucket: str, role: str, members: list[str]) -> dict[str, Any]:
        policy = borrow(self, IamBindingProvider).read_policy(f"compartment:{_scope(bucket)['compartment']}")
        return {"bucket": bucket, "role": role, "members": members, "etag": policy.etag if policy else None}

    def create(self, props: dict[str, Any]) -> CreateResult:
        bucket, role = props["bucket"], props["role"]
        native = {**_scope(bucket), "role": roles.ROLES[role], "members": props["members"]}
        borrow(self, IamBindingProvider).create(native)
        return CreateResult(f"b/{bucket} {role}", self._outs(bucket, role, list(props["members"])))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        bucket, rest = _split(id_)
        role = rest[0] if rest else ""
        if role not in roles.ROLES:
            return self.gone()
        found = borrow(self, IamBindingProvider).read(
            f"compartment:{_scope(bucket)['compartment']} {roles.ROLES[role]}", {}
        )
        if not found.id:
            return self.gone()
        outs = self._outs(bucket, role, list((found.outs or {}).get("members", [])))
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        bucket, role = news["bucket"], news["role"]
        native_id = f"compartment:{_scope(bucket)['compartment']} {roles.ROLES[role]}"
        borrow(self, IamBindingProvider).update(native_id, {}, {"members": news["members"]})
        return UpdateResult(self._outs(bucket, role, list(news["members"])))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        bucket, rest = _split(id_)
        if rest and rest[0] in roles.ROLES:
            native_id = f"compartment:{_scope(bucket)['compartment']} {roles.ROLES[rest[0]]}"
            borrow(self, IamBindingProvider).delete(native_id, {})


class BucketIAMBinding(RegistryResource, module="gcp/storage", name="BucketIAMBinding"):
    """``gcp.storage.BucketIAMBinding`` on modelyard (see :mod:`modelyard.pulumi.gcp`)."""

    PROVIDER = BucketIAMBindingProvider
    bucket: pulumi.Output[str]
    role: pulumi.Output[str]
    members: pulumi.Output[list[str]]
    etag: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        bucket: pulumi.Input[str] | None = None,
        condition: pulumi.Input[Any] | None = None,
        members: pulumi.Input[list[str]] | None = None,
        role: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"bucket": bucket, "condition": condition, "members": members, "role": role, **unknown}
        super().__init__(resource_name, args, opts)


class BucketIAMMemberProvider(RegistryProvider):
    TYPE = "gcp:storage:BucketIAMMember"
    ARGS = {
        "bucket": Arg("str", required=True, replaces=True),
        "role": Arg("str", required=True, replaces=True, validate=roles.role),
        "member": Arg("str", required=True, replaces=True, validate=roles.member),
        "condition": Arg("dict", unsupported=roles.NO_CONDITIONS),
    }
    OUTPUTS = ("etag",)

    @staticmethod
    def _native_id(bucket: str, role: str, member: str) -> str:
        return f"compartment:{_scope(bucket)['compartment']} {roles.ROLES[role]} {member}"

    def create(self, props: dict[str, Any]) -> CreateResult:
        bucket, role, member = props["bucket"], props["role"], props["member"]
        borrow(self, IamMemberProvider).create({**_scope(bucket), "role": roles.ROLES[role], "member": member})
        return CreateResult(f"b/{bucket} {role} {member}", {"bucket": bucket, "role": role, "member": member})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        bucket, rest = _split(id_)
        if len(rest) != 2 or rest[0] not in roles.ROLES:
            return self.gone()
        if not borrow(self, IamMemberProvider).read(self._native_id(bucket, *rest), {}).id:
            return self.gone()
        outs = {"bucket": bucket, "role": rest[0], "member": rest[1]}
        return ReadResult(id_, outs, outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        bucket, rest = _split(id_)
        if len(rest) == 2 and rest[0] in roles.ROLES:
            borrow(self, IamMemberProvider).delete(self._native_id(bucket, *rest), {})


class BucketIAMMember(RegistryResource, module="gcp/storage", name="BucketIAMMember"):
    """``gcp.storage.BucketIAMMember`` on modelyard (see :mod:`modelyard.pulumi.gcp`)."""

    PROVIDER = BucketIAMMemberProvider
    bucket: pulumi.Output[str]
    role: pulumi.Output[str]
    member: pulumi.Output[str]
    etag: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        bucket: pulumi.Input[str] | None = None,
        condition: pulumi.Input[Any] | None = None,
        member: pulumi.Input[str] | None = None,
        role: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"bucket": bucket, "condition": condition, "member": member, "role": role, **unknown}
        super().__init__(resource_name, args, opts)


__all__ = ["BucketIAMBinding", "BucketIAMMember"]
