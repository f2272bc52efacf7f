"""``oci.artifacts``: ContainerRepository, ContainerRepositoryReadmeArgs, ContainerConfiguration,
with ``pulumi_oci``'s argument and output names, on modelyard's native providers."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.pulumi.cloud import borrow, ensure_compartment
from modelyard.pulumi.compartments import CompartmentConfigurationProvider, RegistryConfigurationProvider
from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.repositories import RepositoryProvider, path_name
from modelyard.pulumi.resource import RegistryResource

TENANCY = "ocid1.tenancy."
NO_DEFINED_TAGS = "modelyard has no tag namespaces; use freeform_tags (they become the repository's labels)"


def compartment_of(compartment_id: str) -> str | None:
    """An OCI ``compartment_id`` as a modelyard compartment (``None``: the root compartment)."""
    if compartment_id.startswith(TENANCY):
        return None
    if compartment_id.startswith("ocid1."):
        return compartment_id.rsplit(".", 1)[-1].lower()
    return compartment_id.lower()


def _compartment_id(value: str) -> str | None:
    name = compartment_of(value)
    if name is None:
        return None
    reason = path_name(name)
    return None if reason is None and "/" not in name else f"{value!r} does not name a compartment: {reason}"


def _display_name(value: str) -> str | None:
    reason = path_name(value.lower())
    return None if reason is None else f"{value!r}: the repository path (its lowercase form) {reason}"


@pulumi.input_type
class ContainerRepositoryReadmeArgs:
    """A repository README: ``content`` is base64 of the text, ``format`` ``TEXT_MARKDOWN`` or ``TEXT_PLAIN``."""

    def __init__(__self__, *, content: pulumi.Input[str], format: pulumi.Input[str]) -> None:
        pulumi.set(__self__, "content", content)
        pulumi.set(__self__, "format", format)

    @property
    @pulumi.getter
    def content(self) -> pulumi.Input[str]:
        return pulumi.get(self, "content")  # type: ignore[no-any-return]

    @content.setter
    def content(self, value: pulumi.Input[str]) -> None:
        pulumi.set(self, "content", value)

    @property
    @pulumi.getter
    def format(self) -> pulumi.Input[str]:
        return pulumi.get(self, "format")  # type: ignore[no-any-return]

    @format.setter
    def format(self, value: pulumi.Input[str]) -> None:
        pulumi.set(self, "format", value)


class ContainerRepositoryProvider(RegistryProvider):
    TYPE = "oci:artifacts:ContainerRepository"
    ARGS = {
        "compartment_id": Arg("str", required=True, replaces=True, validate=_compartment_id),
        "display_name": Arg("str", required=True, replaces=True, validate=_display_name),
        "is_immutable": Arg("bool"),
        "is_public": Arg("bool"),
        "readme": Arg("dict", validate=RepositoryProvider.ARGS["readme"].validate),
        "freeform_tags": Arg("dict[str,str]", validate=RepositoryProvider.ARGS["labels"].validate),
        "defined_tags": Arg("dict", unsupported=NO_DEFINED_TAGS),
    }
    OUTPUTS = ("url", "namespace", "billable_size_in_gbs", "created_by", "image_count", "layer_count",
               "layers_size_in_bytes", "state", "system_tags", "time_created", "time_last_pushed")  # fmt: skip

    def comparable(self, key: str, value: Any) -> Any:
        if key == "compartment_id" and isinstance(value, str):
            return compartment_of(value)
        if key == "display_name" and isinstance(value, str):
            return value.lower()
        return borrow(self, RepositoryProvider).comparable(key, value)

    @staticmethod
    def native(props: dict[str, Any]) -> dict[str, Any]:
        native: dict[str, Any] = {
            "compartment": compartment_of(props["compartment_id"]),
            "display_name": str(props["display_name"]).lower(),
            "is_immutable": props.get("is_immutable"),
            "is_public": props.get("is_public"),
            "readme": props.get("readme"),
            "labels": props.get("freeform_tags"),
        }
        return {key: value for key, value in native.items() if value is not None}

    def present(self, outs: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
        """Native outputs under ``pulumi_oci``'s names, keeping the program's forms of the
        compartment and display name where they name the same thing."""
        compartment_id = props.get("compartment_id")
        if not isinstance(compartment_id, str) or compartment_of(compartment_id) != outs["compartment"]:
            compartment_id = outs["compartment"] or TENANCY + "oc1..root"
        display_name = props.get("display_name")
        if not isinstance(display_name, str) or display_name.lower() != outs["display_name"]:
            display_name = outs["display_name"]
        return {
            "compartment_id": compartment_id,
            "display_name": display_name,
            "is_immutable": outs["is_immutable"],
            "is_public": outs["is_public"],
            "readme": outs["readme"],
            "freeform_tags": outs["labels"],
            "defined_tags": {},
            "url": outs["url"],
            "namespace": self.connection.host,
            "billable_size_in_gbs": str(-(-outs["layers_size_in_bytes"] // 1024**3)),
            "created_by": outs["created_by"],
            "image_count": outs["image_count"],
            "layer_count": outs["layer_count"],
            "layers_size_in_bytes": str(outs["layers_size_in_bytes"]),
            "state": outs["lifecycle_state"],
            "system_tags": {},
            "time_created": outs["time_created"],
            "time_last_pushed": outs["time_last_pushed"],
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        native = self.native(props)
        if native.get("compartment"):
            ensure_compartment(self, native["compartment"])
        created = borrow(self, RepositoryProvider).create(native)
        return CreateResult(created.id, self.present(created.outs or {}, props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        found = borrow(self, RepositoryProvider).read(id_, {})
        if not found.id:
            return self.gone()
        outs = self.present(found.outs or {}, props)
        return ReadResult(found.id, outs, self.inputs_of({**outs, "defined_tags": None}))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        updated = borrow(self, RepositoryProvider).update(id_, self.native(olds), self.native(news))
        return UpdateResult(self.present(updated.outs or {}, news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        borrow(self, RepositoryProvider).delete(id_, props)


class ContainerRepository(RegistryResource, module="oci/artifacts", name="ContainerRepository"):
    """``oci.artifacts.ContainerRepository`` on modelyard (see :mod:`modelyard.pulumi.oci`)."""

    PROVIDER = ContainerRepositoryProvider
    compartment_id: pulumi.Output[str]
    display_name: pulumi.Output[str]
    is_immutable: pulumi.Output[bool]
    is_public: pulumi.Output[bool]
    readme: pulumi.Output[dict[str, str]]
    freeform_tags: pulumi.Output[dict[str, str]]
    defined_tags: pulumi.Output[dict[str, str]]
    url: pulumi.Output[str]
    namespace: pulumi.Output[str]
    billable_size_in_gbs: pulumi.Output[str]
    created_by: pulumi.Output[str]
    image_count: pulumi.Output[int]
    layer_count: pulumi.Output[int]
    layers_size_in_bytes: pulumi.Output[str]
    state: pulumi.Output[str]
    system_tags: pulumi.Output[dict[str, str]]
    time_created: pulumi.Output[str]
    time_last_pushed: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        compartment_id: pulumi.Input[str] | None = None,
        display_name: pulumi.Input[str] | None = None,
        is_immutable: pulumi.Input[bool] | None = None,
        is_public: pulumi.Input[bool] | None = None,
        readme: pulumi.Input[ContainerRepositoryReadmeArgs | dict[str, Any]] | None = None,
        defined_tags: pulumi.Input[dict[str, str]] | None = None,
        freeform_tags: pulumi.Input[dict[str, str]] | None = None,
        **unknown: Any,
    ) -> None:
        args = {
            "compartment_id": compartment_id, "display_name": display_name, "is_immutable": is_immutable,
            "is_public": is_public, "readme": readme, "defined_tags": defined_tags, "freeform_tags": freeform_tags,
            **unknown,
        }  # fmt: skip
        super().__init__(resource_name, args, opts)


class ContainerConfigurationProvider(RegistryProvider):
    """A tenancy's configuration is the registry's default; a compartment's, its own setting."""

    TYPE = "oci:artifacts:ContainerConfiguration"
    ARGS = {
        "compartment_id": Arg("str", required=True, replaces=True, validate=_compartment_id),
        "is_repository_created_on_first_push": Arg("bool", required=True),
    }
    OUTPUTS = ("namespace",)

    def comparable(self, key: str, value: Any) -> Any:
        if key == "compartment_id" and isinstance(value, str):
            return compartment_of(value)
        return value

    def _apply(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        compartment = compartment_of(props["compartment_id"])
        value = props["is_repository_created_on_first_push"]
        if compartment is None:
            borrow(self, RegistryConfigurationProvider).create({"is_repository_created_on_first_push": value})
            id_ = props["compartment_id"]
        else:
            ensure_compartment(self, compartment)
            borrow(self, CompartmentConfigurationProvider).create(
                {"compartment": compartment, "is_repository_created_on_first_push": value}
            )
            id_ = compartment
        outs = {"compartment_id": props["compartment_id"], "is_repository_created_on_first_push": value,
                "namespace": self.connection.host}  # fmt: skip
        return id_, outs

    def create(self, props: dict[str, Any]) -> CreateResult:
        id_, outs = self._apply(props)
        return CreateResult(id_, outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        compartment = compartment_of(id_)
        if compartment is None:
            value = self.call("read", self.client.get_configuration).is_repository_created_on_first_push
        else:
            view = self.find(self.client.get_compartment_configuration, compartment)
            if view is None:
                return self.gone()
            value = view.is_repository_created_on_first_push
        given = props.get("compartment_id")
        compartment_id = given if isinstance(given, str) and compartment_of(given) == compartment else id_
        outs = {"compartment_id": compartment_id, "is_repository_created_on_first_push": value,
                "namespace": self.connection.host}  # fmt: skip
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(news)[1])

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """A compartment's setting goes back to inheriting; the tenancy's (the registry's) stays."""
        compartment = compartment_of(id_)
        if compartment is not None:
            borrow(self, CompartmentConfigurationProvider).delete(compartment, {})


class ContainerConfiguration(RegistryResource, module="oci/artifacts", name="ContainerConfiguration"):
    """``oci.artifacts.ContainerConfiguration`` on modelyard (see :mod:`modelyard.pulumi.oci`)."""

    PROVIDER = ContainerConfigurationProvider
    compartment_id: pulumi.Output[str]
    is_repository_created_on_first_push: pulumi.Output[bool]
    namespace: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        compartment_id: pulumi.Input[str] | None = None,
        is_repository_created_on_first_push: pulumi.Input[bool] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"compartment_id": compartment_id,
                "is_repository_created_on_first_push": is_repository_created_on_first_push, **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)


__all__ = ["ContainerConfiguration", "ContainerRepository", "ContainerRepositoryReadmeArgs"]
