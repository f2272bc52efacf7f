"""The Alias resource (promotion as code) against a live registry: the provider directly, then a
program that promotes a version, with drift, refusals by promotion gates and history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest

import modelyard.pulumi as my
from modelyard.pulumi import ModelyardError
from modelyard.pulumi.aliases import AliasProvider
from modelyard.schemas import admin as schemas
from modelyard.sdk import Registry as Sdk
from tests.pulumi.conftest import Registry
from tests.pulumi.test_providers import checked, configured, failures


def versions(registry: Registry, repository: str, tmp_path: Path, *tags: str) -> dict[str, str]:
    """Push a tiny model per tag; their digests by tag."""
    digests = {}
    with Sdk(registry.url, api_key=registry.admin_key) as sdk:
        for tag in tags:
            model = tmp_path / tag
            model.mkdir()
            (model / "config.json").write_text(f'{{"version": "{tag}"}}')
            digests[tag] = sdk.push_model(model, f"{repository}:{tag}").digest
    return digests


@pytest.fixture
def promoted(registry: Registry, tmp_path: Path) -> dict[str, str]:
    """``promo/llm`` (a fresh one per test: the registry is the module's) with versions v1 and v2."""
    for old in registry.admin.iter_repositories(compartment="promo"):
        registry.admin.delete_repository(old.name)
    if not any(c.name == "promo" for c in registry.admin.iter_compartments()):
        registry.admin.create_compartment(schemas.CompartmentCreate(name="promo"))
    registry.admin.create_repository(
        schemas.RepositoryCreate(compartment_id="promo", display_name="llm", immutable_tag_patterns=["v*"])
    )
    return versions(registry, "promo/llm", tmp_path, "v1", "v2")


def test_alias_provider_moves_reads_and_deletes(registry: Registry, promoted: dict[str, str]) -> None:
    provider = configured(AliasProvider, registry)
    assert "neither a version tag nor a digest" in failures(provider, {"repository": "promo/llm", "alias": "prod",
                                                                        "target": "sha1:abc"})["target"]  # fmt: skip
    props = checked(provider, {"repository": "promo/llm", "alias": "prod", "target": "v1", "reason": "launch"})
    created = provider.create(props)
    outs: dict[str, Any] = created.outs or {}
    assert created.id == "promo/llm:prod"
    assert (outs["digest"], outs["versions"], outs["target"]) == (promoted["v1"], ["v1"], "v1")
    assert provider.diff(created.id, outs, {**props, "reason": "other words"}).changes is False
    assert provider.diff(created.id, outs, {**props, "target": "v2"}).replaces == []

    moved = provider.update(created.id, outs, {**props, "target": "v2", "reason": "v2 passed evals"})
    assert (moved.outs or {})["digest"] == promoted["v2"]
    history = registry.admin.alias_history("promo/llm", "prod").items
    assert [(h.to_digest, h.reason) for h in history[:2]] == [(promoted["v2"], "v2 passed evals"),
                                                               (promoted["v1"], "launch")]  # fmt: skip

    # Someone moved it back meanwhile: the update refuses to undo their move blindly.
    registry.admin.set_alias("promo/llm", "prod", "v1", reason="hotfix")
    with pytest.raises(ModelyardError, match=r"promo/llm:prod move to v2: .*409"):
        provider.update(created.id, moved.outs or {}, {**props, "target": "v2"})
    read = provider.read(created.id, {"target": "v2"})
    assert (read.outs or {})["target"] == promoted["v1"], "refresh shows where it points now"

    provider.delete(created.id, {})
    assert provider.read(created.id, {}).id == ""
    assert [a.name for a in registry.admin.aliases("promo/llm")] == []


def test_a_program_promotes_and_a_gate_refuses_with_its_rule(registry: Registry, promoted: dict[str, str]) -> None:
    target = {"prod": "v1"}

    def program() -> None:
        staging = my.Alias("staging", repository="promo/llm", alias="staging", target=target["prod"])
        prod = my.Alias("prod", repository="promo/llm", alias="prod", target=target["prod"], reason="promote",
                        opts=pulumi.ResourceOptions(depends_on=[staging]))  # fmt: skip
        pulumi.export("prod", prod.digest)

    gate = schemas.PromotionGate(alias="prod", require_alias_first="staging")
    registry.admin.update_repository("promo/llm", schemas.RepositoryUpdate(promotion_gates=[gate]))
    engine = registry.engine()
    result = engine.up(program)
    assert result.outputs["prod"] == promoted["v1"]

    # Straight to prod without staging first: the gate refuses and says why.
    def skip_staging() -> None:
        my.Alias("prod-direct", repository="promo/llm", alias="prod", target="v2")

    with pytest.raises(ModelyardError, match=r"move to v2: DENIED.*staging"):
        registry.engine().up(skip_staging)

    target["prod"] = "v2"
    assert engine.up(program).ops("update") == ["prod", "staging"]
    assert {a.name: a.digest for a in registry.admin.aliases("promo/llm")} == {"prod": promoted["v2"],
                                                                               "staging": promoted["v2"]}  # fmt: skip
    registry.admin.set_alias("promo/llm", "prod", "v1")
    assert {"digest", "target"} <= set(engine.refresh()["prod"]), "moved outside: refresh shows it"
    assert engine.up(program).ops("update") == ["prod"]
    assert {a.name: a.digest for a in registry.admin.aliases("promo/llm")}["prod"] == promoted["v2"]
