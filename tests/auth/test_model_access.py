"""Model versions under authentication: search shows only versions of repositories the caller may
read (public ones to anyone, private ones to those bound on them), and a private repository's
version, files and file bytes answer 404 to everyone else, exactly like a missing repository."""

from __future__ import annotations

import json

from tests.api.models.builders import CONFIG_RAW, HF_CONFIG, WEIGHT_RAW, llama_safetensors, modelpack_config, raw_file
from tests.api.models.sync_push import push_model_sync
from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import ADMIN_PASSWORD, Registry

PASSWORD = "model-access-password"
REPOS = ("team/public", "team/private", "team/shared", "other/secret")


def _setup(registry: Registry) -> str:
    admin = registry.refresh_token("admin", ADMIN_PASSWORD)
    for compartment in ("team", "other"):
        registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": compartment})
    for name in REPOS:
        compartment, display = name.split("/")
        spec = {"compartment_id": compartment, "display_name": display, "is_public": name == "team/public"}
        registry.api("POST", "/api/v1/repositories", admin, 201, json=spec)
    registry.api("POST", "/api/v1/users", admin, 201, json={"name": "alice", "email": "a@x.io", "password": PASSWORD})
    policy = registry.api("GET", "/api/v1/repositories/team/shared/-/iam", admin, 200)
    policy["bindings"].append({"role": "reader", "members": ["user:alice"]})
    registry.api("PUT", "/api/v1/repositories/team/shared/-/iam", admin, 200, json=policy)
    layers = [
        raw_file(WEIGHT_RAW, "model.safetensors", llama_safetensors()),
        raw_file(CONFIG_RAW, "config.json", json.dumps(HF_CONFIG).encode()),
    ]
    for name in REPOS:
        token = registry.token(f"repository:{name}:pull,push", auth=("admin", ADMIN_PASSWORD))
        push_model_sync(registry.http, name, "v1", modelpack_config(), layers, token)
    return admin


def _search(registry: Registry, token: str | None, **params: str) -> list[str]:
    body = registry.api("GET", "/api/v1/models", token, 200, params={"arch": "llama", **params})
    return sorted(item["repository"] for item in body["items"])


def test_search_and_versions_follow_read_access(registry_factory: AuthRegistryFactory) -> None:
    registry = registry_factory()
    admin = _setup(registry)
    alice = registry.refresh_token("alice", PASSWORD)

    assert _search(registry, admin) == sorted(REPOS)
    assert _search(registry, alice) == ["team/public", "team/shared"]
    assert _search(registry, None) == ["team/public"]
    # Pages end on versions the caller may see: one at a time, alice still gets exactly hers.
    seen: list[str] = []
    page: str | None = None
    while True:
        params = {"arch": "llama", "limit": "1", **({"page": page} if page else {})}
        body = registry.api("GET", "/api/v1/models", alice, 200, params=params)
        seen += [item["repository"] for item in body["items"]]
        page = body["next_page"]
        if page is None:
            break
    assert sorted(seen) == ["team/public", "team/shared"]

    base = "/api/v1/repositories/{}/-/versions/v1"
    for path in ("", "/files", "/files/config.json"):
        assert registry.request("GET", base.format("team/shared") + path, alice).status_code == 200
        assert registry.request("GET", base.format("team/public") + path, None).status_code == 200
        for token in (alice, None):
            refused = registry.request("GET", base.format("other/secret") + path, token)
            expected = 404 if token else 401  # anonymous callers are asked to log in first
            assert refused.status_code == expected, (path, refused.text)
            if token:
                assert refused.json()["errors"][0]["code"] == "NOT_FOUND"
                missing = registry.request("GET", base.format("other/none") + path, token)
                assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"
    shared = registry.request("GET", base.format("team/shared") + "/files/config.json", alice)
    assert json.loads(shared.content) == HF_CONFIG
