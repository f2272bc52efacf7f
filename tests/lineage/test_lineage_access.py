"""Lineage across repositories under authentication, on SQLite and PostgreSQL: models pushed with
the SDK's ``push_model(base=…)`` (the OCI base annotations) and an eval report attached by
``subject``. A reader of the ``team`` compartment but not of ``other/hidden`` sees no trace of
``other/hidden`` (no node, no edge, nothing past it), while an administrator sees the whole
chain; a diff needs read access to both sides; unknown references are 404, never 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.sdk import Registry as Sdk
from tests.auth.conftest import auth_registry
from tests.auth.support import ADMIN_PASSWORD, OCI_MANIFEST, Registry
from tests.helpers import sha256
from tests.models.support import make_model

ALICE = "lineage-alice-password"
EVAL = "application/vnd.modelyard.eval.v1+json"


class World:
    def __init__(self, registry: Registry, digests: dict[str, str], eval_digest: str) -> None:
        self.registry = registry
        self.d = digests
        self.eval_digest = eval_digest
        self.admin = registry.refresh_token("admin", ADMIN_PASSWORD)
        self.alice = registry.refresh_token("alice", ALICE)


def _push(sdk: Sdk, root: Path, ref: str, seed: int, base: str | None = None) -> tuple[str, bytes]:
    result = sdk.push_model(make_model(root / f"m{seed}", seed=seed), ref, base=base)
    return result.digest, result.manifest


def _attach_eval(registry: Registry, token: str, repository: str, subject: str, manifest: bytes) -> str:
    report = json.dumps({"accuracy": 0.93}).encode()
    empty = b"{}"
    registry.push_blob(repository, report, token)
    registry.push_blob(repository, empty, token)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": EVAL,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2},
            "layers": [{"mediaType": EVAL, "digest": sha256(report), "size": len(report)}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(manifest)},
        }
    ).encode()
    response = registry.put_manifest(repository, sha256(body), body, token)
    assert response.status_code == 201, response.text
    return sha256(body)


@pytest.fixture(scope="module")
def world(database_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("lineage")
    settings: dict[str, Any] = {"database_url": database_url} if database_url else {}
    with auth_registry(root / "data", **settings) as registry:
        admin = registry.refresh_token("admin", ADMIN_PASSWORD)
        for compartment in ("team", "other"):
            registry.api("POST", "/api/v1/compartments", admin, 201,
                         json={"name": compartment, "is_repository_created_on_first_push": True})  # fmt: skip
        registry.api("POST", "/api/v1/users", admin, 201, json={"name": "alice", "email": "al@x.io", "password": ALICE})
        policy = registry.api("GET", "/api/v1/compartments/team/iam", admin, 200)
        policy["bindings"].append({"role": "reader", "members": ["user:alice"]})
        registry.api("PUT", "/api/v1/compartments/team/iam", admin, 200, json=policy)

        d: dict[str, str] = {}
        with Sdk(registry.url, username="admin", password=ADMIN_PASSWORD) as sdk:
            d["base"], base_manifest = _push(sdk, root, "team/base:v1", 1)
            d["hidden"], _ = _push(sdk, root, "other/hidden:v1", 2, base=f"team/base@{d['base']}")
            d["child"], _ = _push(sdk, root, "team/child:v1", 3, base=f"other/hidden@{d['hidden']}")
            d["ft"], _ = _push(sdk, root, "team/ft:v1", 4, base=f"team/base@{d['base']}")
            d["gone"], _ = _push(sdk, root, "team/gone:v1", 5)
            d["orphan"], _ = _push(sdk, root, "team/orphan:v1", 6, base=f"team/gone@{d['gone']}")
        token = registry.token("repository:team/base:pull,push", auth=("admin", ADMIN_PASSWORD))
        eval_digest = _attach_eval(registry, token, "team/base", d["base"], base_manifest)
        token = registry.token("repository:team/gone:pull,push,delete", auth=("admin", ADMIN_PASSWORD))
        deleted = registry.request("DELETE", f"/v2/team/gone/manifests/{d['gone']}", token)
        assert deleted.status_code == 202, deleted.text
        yield World(registry, d, eval_digest)


def _lineage(world: World, token: str | None, ref: str, status: int = 200) -> Any:
    repository, reference = ref.rsplit(":", 1) if "@" not in ref else ref.split("@", 1)
    return world.registry.api("GET", f"/api/v1/repositories/{repository}/-/versions/{reference}/lineage", token, status)


def _keys(nodes: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(n["repository"], n["digest"]) for n in nodes}


def _edges(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["child"], e["parent"], e["relation"]) for e in body["edges"]}


def test_an_administrator_sees_the_whole_chain_across_repositories(world: World) -> None:
    d = world.d
    down = _lineage(world, world.admin, "team/base:v1")
    assert down["version"]["tags"] == ["v1"] and down["version"]["model"]["architecture"] == "llama"
    assert down["ancestors"] == []
    assert _keys(down["descendants"]) == {
        ("other/hidden", d["hidden"]), ("team/child", d["child"]), ("team/ft", d["ft"]),
        ("team/base", world.eval_digest),
    }  # fmt: skip
    assert _edges(down) == {
        (f"other/hidden@{d['hidden']}", f"team/base@{d['base']}", "base"),
        (f"team/child@{d['child']}", f"other/hidden@{d['hidden']}", "base"),
        (f"team/ft@{d['ft']}", f"team/base@{d['base']}", "base"),
        (f"team/base@{world.eval_digest}", f"team/base@{d['base']}", "subject"),
    }
    report = next(n for n in down["descendants"] if n["digest"] == world.eval_digest)
    assert report["artifact_type"] == EVAL and report["model"]["packaging"] == "artifact"

    up = _lineage(world, world.admin, "team/child:v1")
    assert [(n["repository"], n["digest"]) for n in up["ancestors"]] == [
        ("other/hidden", d["hidden"]), ("team/base", d["base"])
    ]  # fmt: skip
    assert up["descendants"] == [] and up["truncated"] is False


def test_a_reader_of_a_sees_nothing_of_a_repository_it_cannot_read(world: World) -> None:
    d = world.d
    down = _lineage(world, world.alice, "team/base:v1")
    assert _keys(down["descendants"]) == {("team/ft", d["ft"]), ("team/base", world.eval_digest)}
    text = json.dumps(down)
    # Not even as a redacted node: neither the hidden version nor what derives from it.
    assert "other/hidden" not in text and d["hidden"] not in text and d["child"] not in text

    up = _lineage(world, world.alice, f"team/child@{d['child']}")
    assert up["ancestors"] == [] and up["edges"] == []
    assert "other/hidden" not in json.dumps(up) and d["base"] not in json.dumps(up)

    # The hidden repository itself answers like a missing one.
    hidden = _lineage(world, world.alice, "other/hidden:v1", 404)
    missing = _lineage(world, world.alice, "other/nothing:v1", 404)
    assert hidden["errors"][0]["code"] == missing["errors"][0]["code"]

    # The SDK gives the same view.
    with Sdk(world.registry.url, username="alice", password=ALICE) as sdk:
        seen = sdk.lineage("team/base:v1")
        assert {(n.repository, n.digest) for n in seen.descendants} == _keys(down["descendants"])


def test_a_base_that_was_deleted_is_a_node_that_is_not_present(world: World) -> None:
    body = _lineage(world, world.alice, "team/orphan:v1")
    assert [(n["repository"], n["digest"], n["present"]) for n in body["ancestors"]] == [
        ("team/gone", world.d["gone"], False)
    ]


def test_unknown_references_are_404(world: World) -> None:
    for ref in ("team/base:v9", "team/base@sha256:" + "0" * 64, "team/base@sha256:zz", "team/none:v1"):
        body = _lineage(world, world.admin, ref, 404)
        assert body["errors"][0]["code"] in ("NOT_FOUND", "NAME_UNKNOWN"), body


def test_a_diff_needs_read_access_to_both_versions(world: World) -> None:
    api = world.registry.api
    path = "/api/v1/repositories/team/base/-/versions/v1/diff/v1"
    assert api("GET", path, world.alice, 404, params={"repository": "other/hidden"})["errors"]
    against = "/api/v1/repositories/team/base/-/versions/v1/diff"
    assert api("GET", against, world.alice, 404, params={"against": "other/hidden:v1"})["errors"]
    assert api("GET", path, world.alice, 200, params={"repository": "team/ft"})["changed"]
    body = api("GET", path, world.admin, 200, params={"repository": "other/hidden"})
    assert body["b"] == {"repository": "other/hidden", "digest": world.d["hidden"], "size": body["b"]["size"]}
