"""IAM on the registry, a compartment or a repository, split as Google splits it.

- :class:`IamPolicy` owns the whole policy of its resource (every binding);
- :class:`IamBinding` owns one role's member list (authoritative for that role only);
- :class:`IamMember` owns one member of one role.

Each change reads the policy with its etag and writes it back with that etag, retrying when
someone changed it in between, so two programs (or a program and an administrator) never
overwrite each other's bindings silently. Ids, as ``pulumi import`` takes them:
``registry``, ``compartment:acme``, ``repository:acme/llm`` for a policy; followed by
`` ROLE`` for a binding and `` ROLE MEMBER`` for a member (Google's ``b/bucket role member``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.client.admin import ApiError
from modelyard.pulumi.provider import Arg, ModelyardError, RegistryProvider, api_message, is_unknown
from modelyard.pulumi.resource import RegistryResource
from modelyard.schemas import admin as schemas

ROLES = [str(role) for role in schemas.ROLE_NAMES]
_MEMBER = re.compile(schemas.MEMBER_PATTERN)
ATTEMPTS = 5


def role_name(value: str) -> str | None:
    return None if value in ROLES else f"unknown role {value!r}; modelyard's roles are {', '.join(ROLES)}"


def member_names(value: list[str]) -> str | None:
    bad = [m for m in value if isinstance(m, str) and not _MEMBER.match(m)]
    if bad:
        return (f"{bad[0]!r} is not a member: use user:EMAIL|NAME, serviceAccount:NAME, group:NAME, "
                "allUsers or allAuthenticatedUsers")  # fmt: skip
    return None


def one_member(value: str) -> str | None:
    return member_names([value])


def scope_of(props: dict[str, Any]) -> str:
    if props.get("repository"):
        return f"repository:{props['repository']}"
    if props.get("compartment"):
        return f"compartment:{props['compartment']}"
    return "registry"


def _where(scope: str) -> dict[str, str]:
    kind, _, name = scope.partition(":")
    return {kind: name} if kind in ("repository", "compartment") else {}


def _scope_args(scope: str) -> dict[str, str | None]:
    kind, _, name = scope.partition(":")
    return {
        "repository": name if kind == "repository" else None,
        "compartment": name if kind == "compartment" else None,
    }


Bindings = dict[str, list[str]]


class _PolicyProvider(RegistryProvider):
    """Read-modify-write of one policy under its etag."""

    SCOPE_ARGS = {
        "repository": Arg("str", replaces=True),
        "compartment": Arg("str", replaces=True),
    }

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        if inputs.get("repository") and inputs.get("compartment"):
            return [("compartment", "set repository or compartment (or neither, for the registry), not both")]
        return []

    def read_policy(self, scope: str) -> schemas.Policy | None:
        policy: schemas.Policy | None = self.find(lambda: self.client.get_policy(**_where(scope)))
        return policy

    @staticmethod
    def bindings_of(policy: schemas.Policy) -> Bindings:
        merged: Bindings = {}
        for binding in policy.bindings:
            members = merged.setdefault(binding.role, [])
            members.extend(m for m in binding.members if m not in members)
        return merged

    def change(self, scope: str, edit: Callable[[Bindings], Bindings]) -> Bindings:
        """Apply ``edit`` to the bindings and write them with the etag read; retried on a race."""
        for attempt in range(ATTEMPTS):
            policy = self.call(f"{scope} read", self.client.get_policy, **_where(scope))
            wanted = edit(self.bindings_of(policy))
            bindings = [schemas.BindingModel(role=role, members=members) for role, members in wanted.items() if members]
            try:
                written = self.client.set_policy(schemas.Policy(bindings=bindings, etag=policy.etag), **_where(scope))
            except ApiError as exc:
                if exc.status == 409 and "etag" in exc.message and attempt + 1 < ATTEMPTS:
                    continue
                raise ModelyardError(f"{self.TYPE} {scope}: {api_message(exc)}") from None
            return self.bindings_of(written)
        raise AssertionError("unreachable")


class IamPolicyProvider(_PolicyProvider):
    TYPE = "modelyard:IamPolicy"
    ARGS = {**_PolicyProvider.SCOPE_ARGS, "bindings": Arg("list[dict]", required=True)}
    OUTPUTS = ("etag",)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        problems = super().validate(inputs)
        for index, binding in enumerate(inputs.get("bindings") or []):
            extra = set(binding) - {"role", "members"}
            if extra:
                problems.append(
                    (f"bindings[{index}]", f"unknown field {sorted(extra)[0]!r} (a binding has role and members)")
                )
            role, members = binding.get("role"), binding.get("members")
            reason: str | None
            if not is_unknown(role):
                reason = role_name(role) if isinstance(role, str) else "role is required"
                if reason:
                    problems.append((f"bindings[{index}].role", reason))
            if isinstance(members, list):
                reason = member_names(members)
                if reason:
                    problems.append((f"bindings[{index}].members", reason))
        return problems

    @staticmethod
    def wanted(props: dict[str, Any]) -> Bindings:
        merged: Bindings = {}
        for binding in props["bindings"]:
            merged.setdefault(binding["role"], []).extend(binding.get("members") or [])
        return merged

    def comparable(self, key: str, value: Any) -> Any:
        if key == "bindings" and isinstance(value, list):
            return {role: sorted(set(members)) for role, members in self.wanted({"bindings": value}).items() if members}
        return super().comparable(key, value)

    def _outs(self, scope: str, bindings: Bindings) -> dict[str, Any]:
        policy = self.read_policy(scope)
        listed = [{"role": role, "members": sorted(members)} for role, members in sorted(bindings.items())]
        return {**_scope_args(scope), "bindings": listed, "etag": policy.etag if policy else None}

    def create(self, props: dict[str, Any]) -> CreateResult:
        scope = scope_of(props)
        return CreateResult(scope, self._outs(scope, self.change(scope, lambda _old: self.wanted(props))))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        policy = self.read_policy(id_)
        if policy is None:
            return self.gone()
        outs = self._outs(id_, self.bindings_of(policy))
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._outs(id_, self.change(id_, lambda _old: self.wanted(news))))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Empties the policy (the registry's keeps its admin bindings: the registry refuses to
        lose its last administrator)."""
        if self.read_policy(id_) is None:
            return
        keep = (lambda old: {"admin": old.get("admin", [])}) if id_ == "registry" else (lambda _old: {})
        self.change(id_, keep)


class IamBindingProvider(_PolicyProvider):
    TYPE = "modelyard:IamBinding"
    ARGS = {
        **_PolicyProvider.SCOPE_ARGS,
        "role": Arg("str", required=True, replaces=True, validate=role_name),
        "members": Arg("list[str]", required=True, validate=member_names),
    }

    def create(self, props: dict[str, Any]) -> CreateResult:
        scope, role = scope_of(props), props["role"]
        bindings = self.change(scope, lambda old: {**old, role: list(props["members"])})
        return CreateResult(f"{scope} {role}", {**_scope_args(scope), "role": role, "members": bindings.get(role, [])})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        scope, _, role = id_.rpartition(" ")
        policy = self.read_policy(scope)
        members = self.bindings_of(policy).get(role) if policy else None
        if not members:
            return self.gone()
        outs = {**_scope_args(scope), "role": role, "members": members}
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        scope, _, role = id_.rpartition(" ")
        bindings = self.change(scope, lambda old: {**old, role: list(news["members"])})
        return UpdateResult({**_scope_args(scope), "role": role, "members": bindings.get(role, [])})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        scope, _, role = id_.rpartition(" ")
        if self.read_policy(scope) is not None:
            self.change(scope, lambda old: {r: m for r, m in old.items() if r != role})


class IamMemberProvider(_PolicyProvider):
    TYPE = "modelyard:IamMember"
    ARGS = {
        **_PolicyProvider.SCOPE_ARGS,
        "role": Arg("str", required=True, replaces=True, validate=role_name),
        "member": Arg("str", required=True, replaces=True, validate=one_member),
    }

    @staticmethod
    def _split(id_: str) -> tuple[str, str, str]:
        scope, role, member = id_.rsplit(" ", 2)
        return scope, role, member

    def create(self, props: dict[str, Any]) -> CreateResult:
        scope, role, member = scope_of(props), props["role"], props["member"]

        def add(old: Bindings) -> Bindings:
            members = old.get(role, [])
            return {**old, role: members if member in members else [*members, member]}

        self.change(scope, add)
        return CreateResult(f"{scope} {role} {member}", {**_scope_args(scope), "role": role, "member": member})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        scope, role, member = self._split(id_)
        policy = self.read_policy(scope)
        if policy is None or member not in self.bindings_of(policy).get(role, []):
            return self.gone()
        outs = {**_scope_args(scope), "role": role, "member": member}
        return ReadResult(id_, outs, self.inputs_of(outs))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        scope, role, member = self._split(id_)
        if self.read_policy(scope) is not None:
            self.change(scope, lambda old: {**old, role: [m for m in old.get(role, []) if m != member]})


class IamPolicy(RegistryResource, module="modelyard", name="IamPolicy"):
    """The whole policy of the registry (no ``repository``/``compartment``), a compartment or a
    repository: ``bindings=[{"role": "reader", "members": ["user:alice"]}, ...]``."""

    PROVIDER = IamPolicyProvider
    bindings: pulumi.Output[list[dict[str, Any]]]
    etag: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        bindings: pulumi.Input[list[Any]] | None = None,
        repository: pulumi.Input[str] | None = None,
        compartment: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"bindings": bindings, "repository": repository, "compartment": compartment, **unknown}
        super().__init__(resource_name, args, opts)


class IamBinding(RegistryResource, module="modelyard", name="IamBinding"):
    """Every member of one role on one resource (other roles are left alone)."""

    PROVIDER = IamBindingProvider
    role: pulumi.Output[str]
    members: pulumi.Output[list[str]]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        role: pulumi.Input[str] | None = None,
        members: pulumi.Input[list[str]] | None = None,
        repository: pulumi.Input[str] | None = None,
        compartment: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"role": role, "members": members, "repository": repository, "compartment": compartment, **unknown}
        super().__init__(resource_name, args, opts)


class IamMember(RegistryResource, module="modelyard", name="IamMember"):
    """One member of one role on one resource (other members are left alone)."""

    PROVIDER = IamMemberProvider
    role: pulumi.Output[str]
    member: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        role: pulumi.Input[str] | None = None,
        member: pulumi.Input[str] | None = None,
        repository: pulumi.Input[str] | None = None,
        compartment: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"role": role, "member": member, "repository": repository, "compartment": compartment, **unknown}
        super().__init__(resource_name, args, opts)
