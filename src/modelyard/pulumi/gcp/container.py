"""``gcp.container``: Registry (a project's registry: its compartment, creating repositories on
first push) and ``get_registry_repository`` (its URL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.pulumi.cloud import borrow, ensure_compartment
from modelyard.pulumi.compartments import CompartmentConfigurationProvider, component_name
from modelyard.pulumi.connection import URL_KEY, Connection
from modelyard.pulumi.gcp import config
from modelyard.pulumi.gcp.roles import bucket_name
from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.resource import RegistryResource


def _project(value: str) -> str | None:
    reason = component_name(value.lower())
    return None if reason is None else f"{value!r} can't be a compartment: it {reason}"


class ContainerRegistryProvider(RegistryProvider):
    TYPE = "gcp:container:Registry"
    ARGS = {
        "project": Arg("str", required=True, replaces=True, validate=_project),
        "location": Arg("str", replaces=True),
    }
    OUTPUTS = ("bucket_self_link", "repository_url")

    def _outs(self, project: str, location: str | None) -> dict[str, Any]:
        return {
            "project": project,
            "location": location,
            "bucket_self_link": f"{self.connection.url}/api/v1/compartments/{project.lower()}",
            "repository_url": f"{self.connection.host}/{project.lower()}",
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        project, location = props["project"], props.get("location")
        compartment = project.lower()
        if not ensure_compartment(self, compartment, create_on_first_push=True):
            borrow(self, CompartmentConfigurationProvider).create(
                {"compartment": compartment, "is_repository_created_on_first_push": True}
            )
        return CreateResult(bucket_name(project, location), self._outs(project, location))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        prefix, _, rest = id_.partition("artifacts.")
        project = rest.removesuffix(".appspot.com") or id_
        if self.find(self.client.get_compartment, project.lower()) is None:
            return self.gone()
        location = prefix.rstrip(".").upper() or None
        outs = self._outs(props.get("project") or project, props.get("location") or location)
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._outs(news["project"], news.get("location")))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """The project's compartment stays (with its repositories); it goes back to inheriting
        the registry's create-on-first-push default."""
        borrow(self, CompartmentConfigurationProvider).delete(str(props["project"]).lower(), {})


class Registry(RegistryResource, module="gcp/container", name="Registry"):
    """``gcp.container.Registry`` on modelyard (see :mod:`modelyard.pulumi.gcp`)."""

    PROVIDER = ContainerRegistryProvider
    project: pulumi.Output[str]
    location: pulumi.Output[str]
    bucket_self_link: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        location: pulumi.Input[str] | None = None,
        project: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"location": location, "project": project if project is not None else config.project, **unknown}
        super().__init__(resource_name, args, opts)


@dataclass(frozen=True)
class GetRegistryRepositoryResult:
    id: str
    project: str
    region: str | None
    repository_url: str


def get_registry_repository(
    project: str | None = None, region: str | None = None, opts: pulumi.InvokeOptions | None = None
) -> GetRegistryRepositoryResult:
    """The URL a project's images are pushed to: ``HOST/PROJECT`` on the configured registry."""
    project = project or config.project
    if not project:
        raise ValueError("get_registry_repository: no project (pass one or set gcp:project)")
    host = Connection.resolve({URL_KEY: pulumi.Config("modelyard").get("url")}).host
    return GetRegistryRepositoryResult(id=project, project=project, region=region,
                                       repository_url=f"{host}/{project.lower()}")  # fmt: skip


def get_registry_repository_output(
    project: pulumi.Input[str | None] = None,
    region: pulumi.Input[str | None] = None,
    opts: pulumi.InvokeOptions | None = None,
) -> pulumi.Output[GetRegistryRepositoryResult]:
    return pulumi.Output.all(project, region).apply(lambda args: get_registry_repository(args[0], args[1]))


__all__ = ["GetRegistryRepositoryResult", "Registry", "get_registry_repository", "get_registry_repository_output"]
