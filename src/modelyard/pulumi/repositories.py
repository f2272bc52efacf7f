"""Repositories: every setting of the admin API, the URL ``docker push`` takes, and statistics."""

from __future__ import annotations

import base64
import re
from typing import Any

import pulumi
import pydantic
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.domain.reference import NAME_PATTERN
from modelyard.pulumi.compartments import component_name
from modelyard.pulumi.provider import Arg, RegistryProvider, is_unknown
from modelyard.pulumi.resource import RegistryResource
from modelyard.schemas import admin as schemas

_NAME = re.compile(NAME_PATTERN)
SETTINGS = ("description", "is_public", "is_immutable", "immutable_tag_patterns", "mutable_tag_exclusions",
            "readme", "labels", "protected_aliases", "promotion_gates")  # fmt: skip


def path_name(value: str) -> str | None:
    if len(value) > 255 or not _NAME.match(value):
        return "must be a lowercase repository path (letters, digits, . _ - and /), e.g. 'llm' or 'team/llm'"
    return None


def _schema_check(field: str) -> Any:
    """A validator that asks the admin API's own model (so both ends agree on the rules)."""

    def check(value: Any) -> str | None:
        if field == "readme" and isinstance(value, dict) and any(is_unknown(v) for v in value.values()):
            return None
        try:
            schemas.RepositoryUpdate.model_validate({field: value})
        except pydantic.ValidationError as exc:
            return "; ".join(str(error["msg"]) for error in exc.errors())
        return None

    return check


class RepositoryProvider(RegistryProvider):
    TYPE = "modelyard:Repository"
    ARGS = {
        "compartment": Arg("str", replaces=True, validate=component_name),
        "display_name": Arg("str", required=True, replaces=True, validate=path_name),
        "description": Arg("str", validate=_schema_check("description")),
        "is_public": Arg("bool"),
        "is_immutable": Arg("bool"),
        "immutable_tag_patterns": Arg("list[str]", validate=_schema_check("immutable_tag_patterns")),
        "mutable_tag_exclusions": Arg("list[str]", validate=_schema_check("mutable_tag_exclusions")),
        "readme": Arg("dict", validate=_schema_check("readme")),
        "labels": Arg("dict[str,str]", validate=_schema_check("labels")),
        "protected_aliases": Arg("list[dict]", validate=_schema_check("protected_aliases")),
        "promotion_gates": Arg("list[dict]", validate=_schema_check("promotion_gates")),
    }
    OUTPUTS = ("name", "url", "repository_id", "image_count", "layer_count", "layers_size_in_bytes",
               "time_created", "time_last_pushed", "created_by", "lifecycle_state")  # fmt: skip

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        name = inputs.get("display_name")
        if inputs.get("compartment") is None and isinstance(name, str) and "/" in name:
            return [("display_name", "a repository of the root compartment is one path component; set compartment")]
        return []

    def comparable(self, key: str, value: Any) -> Any:
        if key == "readme" and isinstance(value, dict):
            return {"content": value.get("content", ""), "format": value.get("format", "TEXT_MARKDOWN")}
        if key in ("protected_aliases", "promotion_gates") and isinstance(value, list | tuple):
            # Compared as the API stores them (defaults filled in), so a rule given briefly is no change.
            model = schemas.ProtectedAlias if key == "protected_aliases" else schemas.PromotionGate
            try:
                return [model.model_validate(item).model_dump() for item in value]
            except pydantic.ValidationError:
                return value
        return super().comparable(key, value)

    @staticmethod
    def outputs(repo: schemas.Repository) -> dict[str, Any]:
        return {
            "compartment": repo.compartment_id,
            "display_name": repo.display_name,
            "description": repo.description,
            "is_public": repo.is_public,
            "is_immutable": repo.is_immutable,
            "immutable_tag_patterns": list(repo.immutable_tag_patterns),
            "mutable_tag_exclusions": list(repo.mutable_tag_exclusions),
            "readme": repo.readme.model_dump(),
            "labels": dict(repo.labels),
            "protected_aliases": [rule.model_dump() for rule in repo.protected_aliases],
            "promotion_gates": [gate.model_dump() for gate in repo.promotion_gates],
            "name": repo.name,
            "url": repo.url,
            "repository_id": repo.id,
            "image_count": repo.image_count,
            "layer_count": repo.layer_count,
            "layers_size_in_bytes": repo.layers_size_in_bytes,
            "time_created": repo.time_created.isoformat(),
            "time_last_pushed": repo.time_last_pushed.isoformat() if repo.time_last_pushed else None,
            "created_by": repo.created_by,
            "lifecycle_state": repo.lifecycle_state,
        }

    @staticmethod
    def full_name(props: dict[str, Any]) -> str:
        compartment = props.get("compartment")
        return f"{compartment}/{props['display_name']}" if compartment else str(props["display_name"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        settings = {key: props[key] for key in SETTINGS if props.get(key) is not None}
        spec = schemas.RepositoryCreate(compartment_id=props.get("compartment"), display_name=props["display_name"],
                                        **settings)  # fmt: skip
        repo = self.call(f"{self.full_name(props)} create", self.client.create_repository, spec)
        return CreateResult(repo.name, self.outputs(repo))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        repo = self.find(self.client.get_repository, id_)
        if repo is None:
            return self.gone()
        outs = self.outputs(repo)
        return ReadResult(repo.name, outs, self.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        changes = {
            key: news[key]
            for key in SETTINGS
            if news.get(key) is not None and self.comparable(key, news[key]) != self.comparable(key, olds.get(key))
        }
        repo = self.call(f"{id_} update", self.client.update_repository, id_, schemas.RepositoryUpdate(**changes))
        return UpdateResult(self.outputs(repo))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if self.find(self.client.get_repository, id_) is not None:
            self.call(f"{id_} delete", self.client.delete_repository, id_)


class Repository(RegistryResource, module="modelyard", name="Repository"):
    """A repository ``compartment/display_name`` (or ``display_name`` in the root compartment).

    Renaming it (``compartment`` or ``display_name``) replaces it; every other setting changes
    in place. ``readme`` is ``{"content": base64, "format": "TEXT_MARKDOWN" | "TEXT_PLAIN"}``
    (:func:`readme` builds one from text). ``protected_aliases`` (``[{"alias": "prod", "roles":
    ["repoAdmin"], "members": [...]}]``) and ``promotion_gates`` (``[{"alias": "prod",
    "required_referrer_types": [...], "require_alias_first": "staging"}]``) are promotion as
    code. Outputs add ``name`` (the path), ``url`` (what ``docker push`` takes) and the
    statistics, as refreshed.
    """

    PROVIDER = RepositoryProvider
    compartment: pulumi.Output[str | None]
    display_name: pulumi.Output[str]
    description: pulumi.Output[str]
    is_public: pulumi.Output[bool]
    is_immutable: pulumi.Output[bool]
    immutable_tag_patterns: pulumi.Output[list[str]]
    mutable_tag_exclusions: pulumi.Output[list[str]]
    readme: pulumi.Output[dict[str, str]]
    labels: pulumi.Output[dict[str, str]]
    protected_aliases: pulumi.Output[list[dict[str, Any]]]
    promotion_gates: pulumi.Output[list[dict[str, Any]]]
    name: pulumi.Output[str]
    url: pulumi.Output[str]
    repository_id: pulumi.Output[str]
    image_count: pulumi.Output[int]
    layer_count: pulumi.Output[int]
    layers_size_in_bytes: pulumi.Output[int]
    time_created: pulumi.Output[str]
    time_last_pushed: pulumi.Output[str | None]
    created_by: pulumi.Output[str | None]
    lifecycle_state: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        compartment: pulumi.Input[str] | None = None,
        display_name: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        is_public: pulumi.Input[bool] | None = None,
        is_immutable: pulumi.Input[bool] | None = None,
        immutable_tag_patterns: pulumi.Input[list[str]] | None = None,
        mutable_tag_exclusions: pulumi.Input[list[str]] | None = None,
        readme: pulumi.Input[dict[str, str]] | None = None,
        labels: pulumi.Input[dict[str, str]] | None = None,
        protected_aliases: pulumi.Input[list[dict[str, Any]]] | None = None,
        promotion_gates: pulumi.Input[list[dict[str, Any]]] | None = None,
        **unknown: Any,
    ) -> None:
        args = {
            "compartment": compartment, "display_name": display_name, "description": description,
            "is_public": is_public, "is_immutable": is_immutable, "immutable_tag_patterns": immutable_tag_patterns,
            "mutable_tag_exclusions": mutable_tag_exclusions, "readme": readme, "labels": labels,
            "protected_aliases": protected_aliases, "promotion_gates": promotion_gates, **unknown,
        }  # fmt: skip
        super().__init__(resource_name, args, opts)


def readme(text: str, format: str = "TEXT_MARKDOWN") -> dict[str, str]:
    """A ``readme`` argument from plain text (the API takes base64 content, as Oracle's does)."""
    return {"content": base64.b64encode(text.encode()).decode(), "format": format}
