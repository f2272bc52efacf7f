"""Alias rules as real clients meet them, against ``modelyard serve`` on SQLite and PostgreSQL:

- CI bound as ``pusher`` with the condition ``tags: build-*``: skopeo pushes ``build-1`` and is
  refused ``prod`` with a message naming the condition; its token says so (``tags`` claim); the
  admin API refuses it ``prod`` too and lets it create ``build-latest``.
- a protected ``prod`` (role ``repoAdmin``): a writer is refused over skopeo and the admin API, the
  administrator is not; the history records who moved it.
- a promotion gate on ``prod`` (an eval report referrer): skopeo's push of ``:prod`` is refused
  until oras-py attaches the report to the manifest, then it goes through.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oras.client
import oras.oci
import pytest

from tests.auth.support import ADMIN_PASSWORD, AuthServerProcess, jwt_claims
from tests.interop.layouts import Layout, build_image
from tests.interop.serverproc import ServerProcess, attach_server_logs, register_servers
from tests.interop.test_skopeo import Skopeo

pytestmark = pytest.mark.interop
pytest_runtest_makereport = attach_server_logs

EVAL = "application/vnd.modelyard.eval.v1+json"
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="session")
def skopeo() -> str:
    path = shutil.which("skopeo")
    if path is None:
        pytest.fail("skopeo is not installed: run scripts/bootstrap --system (it installs Debian's skopeo)")
    return path


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``modelyard serve --auth`` per database for the module (each test uses its own
    compartment): server starts are most of these tests' time."""
    extra: tuple[str, ...] = ()
    postgres = None
    database = f"aliases_interop_{os.getpid()}"
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres_server")
        extra = ("--database-url", postgres.create_database(database))
    root = tmp_path_factory.mktemp("aliases-interop")
    server = AuthServerProcess(
        root / "data", root / "server.log", extra=("--auth", "--no-access-log", *extra),
        env={"MODELYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if postgres is not None:
            postgres.drop_database(database)


@pytest.fixture
def auth_server(request: pytest.FixtureRequest, shared_server: ServerProcess) -> ServerProcess:
    register_servers(request.node, [shared_server])  # its log goes with a failing test's report
    return shared_server


def call(server: ServerProcess, method: str, path: str, status: int, body: Any = None, auth: Any = ADMIN) -> Any:
    response = httpx.request(method, f"{server.url}{path}", json=body, auth=auth, timeout=60)
    assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def skopeo_push(
    skopeo: Skopeo, layout: Layout, tag: str, server: ServerProcess, target: str, creds: tuple[str, str] | None
) -> subprocess.CompletedProcess[str]:
    auth = [f"--dest-creds={creds[0]}:{creds[1]}"] if creds else []
    return skopeo.run(
        "copy", "--quiet", "--dest-tls-verify=false", *auth, f"oci:{layout.path}:{tag}",
        f"docker://{server.host}/{target}", check=False,
    )  # fmt: skip


def said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())  # skopeo may wrap lines


def setup_repository(server: ServerProcess, compartment: str, **settings: Any) -> str:
    """A compartment of the test's own and its repository ``llm``; returns the repository's name."""
    call(server, "POST", "/api/v1/compartments", 201, {"name": compartment})
    call(
        server, "POST", "/api/v1/repositories", 201, {"compartment_id": compartment, "display_name": "llm", **settings}
    )
    return f"{compartment}/llm"


def service_account_key(server: ServerProcess, name: str) -> str:
    call(server, "POST", "/api/v1/service-accounts", 201, {"name": name})
    created = call(server, "POST", f"/api/v1/service-accounts/{name}/keys", 201, {})
    return str(created["secret"])


def test_a_pusher_limited_to_build_tags_is_refused_prod(
    auth_server: ServerProcess, skopeo: str, tmp_path: Path
) -> None:
    server = auth_server
    repo = setup_repository(server, "build")
    key = service_account_key(server, "ci")
    policy = call(server, "GET", f"/api/v1/repositories/{repo}/-/iam", 200)
    policy["bindings"] = [{"role": "pusher", "members": ["serviceAccount:ci"], "condition": {"tags": ["build-*"]}}]
    stored = call(server, "PUT", f"/api/v1/repositories/{repo}/-/iam", 200, policy)
    assert stored["bindings"][0]["condition"] == {"tags": ["build-*"]}

    # The token service grants push, limited to the condition's tags.
    token = httpx.get(
        f"{server.url}/auth/token", params={"service": "modelyard", "scope": f"repository:{repo}:pull,push"},
        auth=("ci", key), timeout=30,
    ).json()["token"]  # fmt: skip
    [entry] = jwt_claims(token)["access"]
    assert entry["actions"] == ["pull", "push"] and entry["tags"] == {"push": ["build-*"]}

    cli = Skopeo(skopeo, tmp_path)
    layout = Layout(tmp_path / "layout")
    image = build_image([2048])
    layout.add_image("one", image)
    assert skopeo_push(cli, layout, "one", server, f"{repo}:build-1", ("ci", key)).returncode == 0
    refused = skopeo_push(cli, layout, "one", server, f"{repo}:prod", ("ci", key))
    assert refused.returncode != 0
    assert "may create only tags matching build-*" in said(refused) and "prod does not match" in said(refused)
    assert httpx.head(f"{server.url}/v2/{repo}/manifests/prod", auth=ADMIN).status_code in (401, 404)
    assert call(server, "GET", f"/api/v1/repositories/{repo}/-/tags/prod/history", 200)["items"] == []

    # The admin API asks the same condition.
    denied = httpx.put(
        f"{server.url}/api/v1/repositories/{repo}/-/aliases/prod", json={"target": "build-1"}, auth=("ci", key)
    )
    assert denied.status_code == 403, denied.text
    assert "build-*" in denied.json()["errors"][0]["message"]
    allowed = call(server, "PUT", f"/api/v1/repositories/{repo}/-/aliases/build-latest", 200,
                   {"target": "build-1", "reason": "ci"}, auth=("ci", key))  # fmt: skip
    assert allowed["moved_by"] == "serviceAccount:ci"
    # ... and the administrator, unconditioned, may.
    assert call(server, "PUT", f"/api/v1/repositories/{repo}/-/aliases/prod", 200, {"target": "build-1"})


def test_a_protected_alias_is_moved_only_by_the_named_role(
    auth_server: ServerProcess, skopeo: str, tmp_path: Path
) -> None:
    server = auth_server
    repo = setup_repository(
        server, "protect", protected_aliases=[{"alias": "prod", "roles": ["admin"], "members": ["user:releaser"]}]
    )
    key = service_account_key(server, "deployer")
    ops_key = service_account_key(server, "ops")
    policy = call(server, "GET", f"/api/v1/repositories/{repo}/-/iam", 200)
    policy["bindings"] = [
        {"role": "writer", "members": ["serviceAccount:deployer"]},
        {"role": "repoAdmin", "members": ["serviceAccount:ops"]},
    ]
    call(server, "PUT", f"/api/v1/repositories/{repo}/-/iam", 200, policy)
    cli = Skopeo(skopeo, tmp_path)
    layout = Layout(tmp_path / "layout")
    layout.add_image("one", build_image([2048]))
    layout.add_image("two", build_image([2048]))
    assert skopeo_push(cli, layout, "one", server, f"{repo}:staging", ("deployer", key)).returncode == 0

    refused = skopeo_push(cli, layout, "one", server, f"{repo}:prod", ("deployer", key))
    assert refused.returncode != 0
    assert f"alias prod of {repo} is protected (rule 'prod')" in said(refused), said(refused)
    denied = httpx.put(
        f"{server.url}/api/v1/repositories/{repo}/-/aliases/prod", json={"target": "staging"}, auth=("deployer", key)
    )
    assert denied.status_code == 403
    assert "only role admin or user:releaser may move it" in denied.json()["errors"][0]["message"]

    # An administrator holds the role.
    assert skopeo_push(cli, layout, "two", server, f"{repo}:prod", ADMIN).returncode == 0
    moved = call(server, "POST", f"/api/v1/repositories/{repo}/-/aliases/prod/rollback", 404, {})
    assert "no earlier target" in moved["errors"][0]["message"]
    call(server, "PUT", f"/api/v1/repositories/{repo}/-/aliases/prod", 200, {"target": "staging", "reason": "promote"})
    history = call(server, "GET", f"/api/v1/repositories/{repo}/-/tags/prod/history", 200)["items"]
    assert [(e["how"], e["actor"], e["reason"]) for e in history] == [
        ("api", "user:admin", "promote"),
        ("push", "user:admin", None),
    ]
    listed = call(server, "GET", f"/api/v1/repositories/{repo}/-/aliases", 200)["items"]
    assert {a["name"]: a["protected"] for a in listed} == {"prod": True, "staging": False}

    # A repoAdmin may delete tags, but not the protected one: not over /v2, not over the API.
    token = httpx.get(
        f"{server.url}/auth/token", params={"service": "modelyard", "scope": f"repository:{repo}:pull,delete"},
        auth=("ops", ops_key), timeout=30,
    ).json()["token"]  # fmt: skip
    bearer = {"Authorization": f"Bearer {token}"}
    refused_delete = httpx.delete(f"{server.url}/v2/{repo}/manifests/prod", headers=bearer)
    assert refused_delete.status_code == 403 and "protected" in refused_delete.json()["errors"][0]["message"]
    digest = listed[0]["digest"]
    by_digest = httpx.delete(f"{server.url}/v2/{repo}/manifests/{digest}", headers=bearer)
    assert by_digest.status_code == 403, by_digest.text  # deleting the manifest would end prod
    api_delete = httpx.delete(f"{server.url}/api/v1/repositories/{repo}/-/aliases/prod", auth=("ops", ops_key))
    assert api_delete.status_code == 403
    assert httpx.delete(f"{server.url}/v2/{repo}/manifests/staging", headers=bearer).status_code == 202
    assert [a["name"] for a in call(server, "GET", f"/api/v1/repositories/{repo}/-/aliases", 200)["items"]] == ["prod"]


def test_a_promotion_gate_refuses_prod_until_an_eval_report_is_attached(
    auth_server: ServerProcess, skopeo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = auth_server
    gate = {"alias": "prod", "required_referrer_types": [EVAL]}
    repo = setup_repository(server, "gate", immutable_tag_patterns=["v*"], promotion_gates=[gate])
    cli = Skopeo(skopeo, tmp_path)
    layout = Layout(tmp_path / "layout")
    image = build_image([4096])
    layout.add_image("one", image)
    assert skopeo_push(cli, layout, "one", server, f"{repo}:v1", ADMIN).returncode == 0

    refused = skopeo_push(cli, layout, "one", server, f"{repo}:prod", ADMIN)
    assert refused.returncode != 0
    message = said(refused)
    assert "promotion gate 'prod'" in message and f"no referrer of type {EVAL}" in message, message
    denied = httpx.put(f"{server.url}/api/v1/repositories/{repo}/-/aliases/prod", json={"target": "v1"}, auth=ADMIN)
    assert denied.status_code == 403 and denied.json()["errors"][0]["detail"]["missing_referrer_types"] == [EVAL]

    # oras-py attaches an eval report to v1 (its config media type is the referrer's artifact type).
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "eval.json").write_text(json.dumps({"accuracy": 0.91}))
    (work / "config.json").write_text("{}")
    client = oras.client.OrasClient(hostname=server.host, insecure=True)
    client.login(username="admin", password=ADMIN_PASSWORD, hostname=server.host, tls_verify=False)
    subject = oras.oci.Subject.from_manifest(client.get_manifest(f"{server.host}/{repo}:v1"))
    assert subject.digest == image.digest
    attached = client.push(
        target=f"{server.host}/{repo}:eval-v1", files=["eval.json"], manifest_config=f"config.json:{EVAL}",
        subject=subject, quiet=True,
    )  # fmt: skip
    assert attached.status_code == 201

    assert skopeo_push(cli, layout, "one", server, f"{repo}:prod", ADMIN).returncode == 0
    history = call(server, "GET", f"/api/v1/repositories/{repo}/-/tags/prod/history", 200)["items"]
    assert [(e["how"], e["to_digest"]) for e in history] == [("push", image.digest)]
