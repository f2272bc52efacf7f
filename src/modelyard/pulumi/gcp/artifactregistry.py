"""``gcp.artifactregistry``: Repository (a DOCKER repository is repository PROJECT/REPOSITORY_ID),
RepositoryIamBinding and RepositoryIamMember (IAM on that repository)."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.pulumi.cloud import borrow, ensure_compartment
from modelyard.pulumi.gcp import config, roles
from modelyard.pulumi.gcp.container import _project
from modelyard.pulumi.iam import IamBindingProvider, IamMemberProvider
from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.repositories import RepositoryProvider, path_name
from modelyard.pulumi.resource import RegistryResource

UNSUPPORTED = {
    "kms_key_name": "modelyard does not encrypt with customer keys",
    "cleanup_policies": "retention is not configured through this resource",
    "cleanup_policy_dry_run": "retention is not configured through this resource",
    "maven_config": "modelyard stores OCI artifacts only (format DOCKER)",
    "remote_repository_config": "modelyard has no remote (pull-through) repositories here",
    "virtual_repository_config": "modelyard has no virtual repositories",
    "vulnerability_scanning_config": "modelyard does not scan images",
}


def _format(value: str) -> str | None:
    return None if value.upper() == "DOCKER" else f"format {value!r}: modelyard stores OCI artifacts (format DOCKER)"


def _mode(value: str) -> str | None:
    return None if value == "STANDARD_REPOSITORY" else f"mode {value!r}: modelyard has STANDARD_REPOSITORY only"


def _repository_id(value: str) -> str | None:
    return path_name(value) if "/" not in value else "a repository_id is one path component"


def _docker_config(value: dict[str, Any]) -> str | None:
    extra = set(value) - {"immutable_tags"}
    return f"docker_config.{sorted(extra)[0]} is not supported (immutable_tags is)" if extra else None


def full_id(project: str, location: str | None, repository_id: str) -> str:
    return f"projects/{project}/locations/{location or '-'}/repositories/{repository_id}"


def parse(repository: str, project: str | None = None) -> tuple[str, str]:
    """``projects/P/locations/L/repositories/R`` or ``R`` (with ``project``) -> (P, R)."""
    parts = repository.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[4] == "repositories":
        return parts[1], parts[5]
    if not project:
        raise ValueError(f"repository {repository!r}: no project (pass project or set gcp:project)")
    return project, repository


class ArtifactRepositoryProvider(RegistryProvider):
    TYPE = "gcp:artifactregistry:Repository"
    ARGS = {
        "repository_id": Arg("str", required=True, replaces=True, validate=_repository_id),
        "project": Arg("str", required=True, replaces=True, validate=_project),
        "location": Arg("str", replaces=True),
        "format": Arg("str", required=True, replaces=True, validate=_format),
        "mode": Arg("str", replaces=True, validate=_mode),
        "description": Arg("str", validate=RepositoryProvider.ARGS["description"].validate),
        "labels": Arg("dict[str,str]", validate=RepositoryProvider.ARGS["labels"].validate),
        "docker_config": Arg("dict", validate=_docker_config),
        **{key: Arg("dict", unsupported=reason) for key, reason in UNSUPPORTED.items()},
    }
    OUTPUTS = ("name", "registry_uri", "create_time", "update_time")

    @staticmethod
    def native(props: dict[str, Any]) -> dict[str, Any]:
        docker = props.get("docker_config") or {}
        native = {
            "compartment": str(props["project"]).lower(),
            "display_name": props["repository_id"],
            "description": props.get("description"),
            "labels": props.get("labels"),
            "is_immutable": docker.get("immutable_tags"),
        }
        return {key: value for key, value in native.items() if value is not None}

    @staticmethod
    def present(outs: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
        project = props.get("project") or outs["compartment"]
        return {
            "repository_id": outs["display_name"],
            "project": project,
            "location": props.get("location"),
            "format": "DOCKER",
            "mode": "STANDARD_REPOSITORY",
            "description": outs["description"],
            "labels": outs["labels"],
            "docker_config": {"immutable_tags": outs["is_immutable"]},
            "name": full_id(project, props.get("location"), outs["display_name"]),
            "registry_uri": outs["url"],
            "create_time": outs["time_created"],
            "update_time": outs["time_last_pushed"] or outs["time_created"],
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        native = self.native(props)
        ensure_compartment(self, native["compartment"])
        created = borrow(self, RepositoryProvider).create(native)
        outs = self.present(created.outs or {}, props)
        return CreateResult(outs["name"], outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        project, repository_id = parse(id_)
        found = borrow(self, RepositoryProvider).read(f"{project.lower()}/{repository_id}", {})
        if not found.id:
            return self.gone()
        location = id_.split("/")[3] if id_.count("/") == 5 else None
        outs = self.present(found.outs or {}, {"project": project, "location": None if location == "-" else location})
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        project, repository_id = parse(id_)
        name = f"{project.lower()}/{repository_id}"
        updated = borrow(self, RepositoryProvider).update(name, self.native(olds), self.native(news))
        return UpdateResult(self.present(updated.outs or {}, news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        project, repository_id = parse(id_)
        borrow(self, RepositoryProvider).delete(f"{project.lower()}/{repository_id}", {})


class Repository(RegistryResource, module="gcp/artifactregistry", name="Repository"):
    """``gcp.artifactregistry.Repository`` on modelyard (see :mod:`modelyard.pulumi.gcp`)."""

    PROVIDER = ArtifactRepositoryProvider
    repository_id: pulumi.Output[str]
    project: pulumi.Output[str]
    location: pulumi.Output[str]
    format: pulumi.Output[str]
    mode: pulumi.Output[str]
    description: pulumi.Output[str]
    labels: pulumi.Output[dict[str, str]]
    docker_config: pulumi.Output[dict[str, Any]]
    name: pulumi.Output[str]
    registry_uri: pulumi.Output[str]
    create_time: pulumi.Output[str]
    update_time: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        repository_id: pulumi.Input[str] | None = None,
        format: pulumi.Input[str] | None = None,
        location: pulumi.Input[str] | None = None,
        project: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        labels: pulumi.Input[dict[str, str]] | None = None,
        docker_config: pulumi.Input[dict[str, Any]] | None = None,
        mode: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {
            "repository_id": repository_id, "format": format, "location": location,
            "project": project if project is not None else config.project, "description": description,
            "labels": labels, "docker_config": docker_config, "mode": mode, **unknown,
        }  # fmt: skip
        super().__init__(resource_name, args, opts)


def _scope(props: dict[str, Any]) -> dict[str, Any]:
    project, repository_id = parse(str(props["repository"]), props.get("project"))
    return {"repository": f"{project.lower()}/{repository_id}"}


_IAM_ARGS = {
    "repository": Arg("str", required=True, replaces=True),
    "project": Arg("str", replaces=True),
    "location": Arg("str", replaces=True),
    "role": Arg("str", required=True, replaces=True, validate=roles.role),
    "condition": Arg("dict", unsupported=roles.NO_CONDITIONS),
}


class RepositoryIamBindingProvider(RegistryProvider):
    TYPE = "gcp:artifactregistry:RepositoryIamBinding"
    ARGS = {**_IAM_ARGS, "members": Arg("list[str]", required=True, validate=roles.members)}
    OUTPUTS = ("etag",)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        try:
            _scope(inputs)
        except ValueError as exc:
            return [("repository", str(exc))]
        return []

    def _native_id(self, props: dict[str, Any]) -> str:
        return f"repository:{_scope(props)['repository']} {roles.ROLES[props['role']]}"

    def _outs(self, props: dict[str, Any], members: list[str]) -> dict[str, Any]:
        policy = borrow(self, IamBindingProvider).read_policy(f"repository:{_scope(props)['repository']}")
        return {**{k: props.get(k) for k in ("repository", "project", "location", "role")}, "members": members,
                "etag": policy.etag if policy else None}  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
        borrow(self, IamBindingProvider).create({**_scope(props), "role": roles.ROLES[props["role"]],
                                                 "members": props["members"]})  # fmt: skip
        return CreateResult(f"{props['repository']} {props['role']}", self._outs(props, list(props["members"])))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        repository, _, role = id_.rpartition(" ")
        known = {"repository": repository, "project": props.get("project"), "location": props.get("location"),
                 "role": role}  # fmt: skip
        if role not in roles.ROLES:
            return self.gone()
        found = borrow(self, IamBindingProvider).read(self._native_id(known), {})
        if not found.id:
            return self.gone()
        outs = self._outs(known, list((found.outs or {}).get("members", [])))
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        borrow(self, IamBindingProvider).update(self._native_id(news), {}, {"members": news["members"]})
        return UpdateResult(self._outs(news, list(news["members"])))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("role") in roles.ROLES:
            borrow(self, IamBindingProvider).delete(self._native_id(props), {})


class RepositoryIamBinding(RegistryResource, module="gcp/artifactregistry", name="RepositoryIamBinding"):
    """``gcp.artifactregistry.RepositoryIamBinding`` on modelyard (see :mod:`modelyard.pulumi.gcp`)."""

    PROVIDER = RepositoryIamBindingProvider
    repository: pulumi.Output[str]
    role: pulumi.Output[str]
    members: pulumi.Output[list[str]]
    etag: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        condition: pulumi.Input[Any] | None = None,
        location: pulumi.Input[str] | None = None,
        members: pulumi.Input[list[str]] | None = None,
        project: pulumi.Input[str] | None = None,
        repository: pulumi.Input[str] | None = None,
        role: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"condition": condition, "location": location, "members": members,
                "project": project if project is not None else config.project, "repository": repository,
                "role": role, **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)


class RepositoryIamMemberProvider(RepositoryIamBindingProvider):
    TYPE = "gcp:artifactregistry:RepositoryIamMember"
    ARGS = {**_IAM_ARGS, "member": Arg("str", required=True, replaces=True, validate=roles.member)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        native = {**_scope(props), "role": roles.ROLES[props["role"]], "member": props["member"]}
        borrow(self, IamMemberProvider).create(native)
        outs = {k: props.get(k) for k in ("repository", "project", "location", "role", "member")}
        return CreateResult(f"{props['repository']} {props['role']} {props['member']}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        repository, role, member = id_.rsplit(" ", 2)
        known = {"repository": repository, "project": props.get("project"), "location": props.get("location"),
                 "role": role, "member": member}  # fmt: skip
        if role not in roles.ROLES:
            return self.gone()
        if not borrow(self, IamMemberProvider).read(f"{self._native_id(known)} {member}", {}).id:
            return self.gone()
        return ReadResult(id_, known, self.inputs_of(known))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("role") in roles.ROLES:
            borrow(self, IamMemberProvider).delete(f"{self._native_id(props)} {props['member']}", {})


class RepositoryIamMember(RegistryResource, module="gcp/artifactregistry", name="RepositoryIamMember"):
    """``gcp.artifactregistry.RepositoryIamMember`` on modelyard (see :mod:`modelyard.pulumi.gcp`)."""

    PROVIDER = RepositoryIamMemberProvider
    repository: pulumi.Output[str]
    role: pulumi.Output[str]
    member: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        condition: pulumi.Input[Any] | None = None,
        location: pulumi.Input[str] | None = None,
        member: pulumi.Input[str] | None = None,
        project: pulumi.Input[str] | None = None,
        repository: pulumi.Input[str] | None = None,
        role: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"condition": condition, "location": location, "member": member,
                "project": project if project is not None else config.project, "repository": repository,
                "role": role, **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)


__all__ = ["Repository", "RepositoryIamBinding", "RepositoryIamMember"]
