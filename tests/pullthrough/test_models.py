"""A model pulled through the cache gets its model facts: the manifest is stored before its blobs
(which are upstream), so it is indexed again once its last blob arrived -- the same facts the
upstream registry shows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from modelyard.sdk import Registry
from tests.models.support import make_model
from tests.pullthrough.support import ALL_MANIFESTS, Rig, add_rule

FACTS = ("packaging", "status", "format", "name", "architecture", "parameters", "precision", "license")


def facts(url: str, repository: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/repositories/{repository}/-/versions/v1", timeout=30)
    assert response.status_code == 200, response.text
    return {key: response.json()[key] for key in FACTS}


def test_a_model_pulled_through_is_indexed_once_its_blobs_are_here(rig: Rig, tmp_path: Path) -> None:
    with Registry(rig.upstream.url) as upstream:
        upstream.push_model(make_model(tmp_path / "model"), "team/llm:v1")
    add_rule(rig.cache.url, "hub", rig.proxy.url)
    manifest = rig.get("/v2/hub/team/llm/manifests/v1", headers={"Accept": ALL_MANIFESTS}).json()
    assert facts(rig.cache.url, "hub/team/llm")["status"] == "opaque"  # its blobs are not here yet
    for descriptor in [manifest["config"], *manifest["layers"]]:
        assert rig.get(f"/v2/hub/team/llm/blobs/{descriptor['digest']}").status_code == 200
    deadline = time.monotonic() + 20  # indexed after the last byte went out, not before
    while (pulled := facts(rig.cache.url, "hub/team/llm"))["status"] == "opaque":
        assert time.monotonic() < deadline, pulled
        time.sleep(0.05)
    assert pulled == facts(rig.upstream.url, "team/llm")
    assert (pulled["status"], pulled["architecture"]) == ("indexed", "llama")
