"""Promotion as code: an :class:`Alias` points a mutable tag (``prod``) at a version.

Each move goes through the aliases API, so the repository's protected-alias rules and promotion
gates apply (a refusal names the rule) and every move lands in the alias's history with the
program's ``reason``. An update sends the digest the state last saw as ``expected_digest``: if
someone moved the alias meanwhile, the update fails instead of silently undoing their move
(refresh shows where it points now). Deleting the resource deletes the alias (the tag).
The id is ``REPOSITORY:ALIAS`` (``acme/llm:prod``).
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.resource import RegistryResource
from modelyard.schemas import aliases as schemas

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_TARGET = re.compile(schemas.TARGET_PATTERN)


def _alias(value: str) -> str | None:
    return None if _TAG.match(value) else f"{value!r} is not a tag name (letters, digits, _ . -; up to 128)"


def _target(value: str) -> str | None:
    return None if _TARGET.match(value) else f"{value!r} is neither a version tag nor a digest (sha256:…)"


class AliasProvider(RegistryProvider):
    TYPE = "modelyard:Alias"
    ARGS = {
        "repository": Arg("str", required=True, replaces=True),
        "alias": Arg("str", required=True, replaces=True, validate=_alias),
        "target": Arg("str", required=True, validate=_target),
        "reason": Arg("str"),
    }
    OUTPUTS = ("digest", "versions", "protected", "moved_at", "moved_by")

    def comparable(self, key: str, value: Any) -> Any:
        return None if key == "reason" else super().comparable(key, value)  # a reason alone moves nothing

    @staticmethod
    def _outs(repository: str, found: schemas.Alias, target: Any, reason: Any) -> dict[str, Any]:
        # The program's target (a version tag) while the alias is still there; the digest otherwise.
        same = isinstance(target, str) and (target == found.digest or target in found.versions)
        return {
            "repository": repository,
            "alias": found.name,
            "target": target if same else found.digest,
            "reason": reason,
            "digest": found.digest,
            "versions": list(found.versions),
            "protected": found.protected,
            "moved_at": found.moved_at.isoformat(),
            "moved_by": found.moved_by,
        }

    def _find(self, repository: str, alias: str) -> schemas.Alias | None:
        found = self.find(self.client.aliases, repository)
        return None if found is None else next((a for a in found if a.name == alias), None)

    def create(self, props: dict[str, Any]) -> CreateResult:
        repository, alias = props["repository"], props["alias"]
        moved = self.call(f"{repository}:{alias} move to {props['target']}", self.client.set_alias,
                          repository, alias, props["target"], reason=props.get("reason"))  # fmt: skip
        return CreateResult(
            f"{repository}:{alias}", self._outs(repository, moved, props["target"], props.get("reason"))
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        repository, _, alias = id_.rpartition(":")
        found = self._find(repository, alias)
        if found is None:
            return self.gone()
        outs = self._outs(repository, found, props.get("target"), props.get("reason"))
        return ReadResult(id_, outs, self.inputs_of(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        repository, _, alias = id_.rpartition(":")
        moved = self.call(f"{id_} move to {news['target']}", self.client.set_alias, repository, alias, news["target"],
                          expected_digest=olds.get("digest"), reason=news.get("reason"))  # fmt: skip
        return UpdateResult(self._outs(repository, moved, news["target"], news.get("reason")))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        repository, _, alias = id_.rpartition(":")
        if self._find(repository, alias) is not None:
            self.call(f"{id_} delete", self.client.delete_alias, repository, alias, reason=props.get("reason"))


class Alias(RegistryResource, module="modelyard", name="Alias"):
    """``alias`` of ``repository`` pointing at ``target`` (a version tag or a digest)."""

    PROVIDER = AliasProvider
    repository: pulumi.Output[str]
    alias: pulumi.Output[str]
    target: pulumi.Output[str]
    digest: pulumi.Output[str]
    versions: pulumi.Output[list[str]]
    protected: pulumi.Output[bool]
    moved_at: pulumi.Output[str]
    moved_by: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        repository: pulumi.Input[str] | None = None,
        alias: pulumi.Input[str] | None = None,
        target: pulumi.Input[str] | None = None,
        reason: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"repository": repository, "alias": alias, "target": target, "reason": reason, **unknown}
        super().__init__(resource_name, args, opts)
