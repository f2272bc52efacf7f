"""Push and pull with authentication on (``modelyard serve --auth``): the refresh token stored by
``modelyard login``, an API key (``MODELYARD_API_KEY`` and the SDK's ``api_key=``), refusals as
typed errors, and mounts that fall back to uploads when the caller can't read the source."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.sdk import AuthenticationError, Registry
from tests.auth.support import ADMIN_PASSWORD, AuthServerProcess, running_auth_server
from tests.auth.support import Registry as Http
from tests.interop.serverproc import register_servers
from tests.models.support import make_model, tree

pytestmark = pytest.mark.interop

ALICE_PASSWORD = "alice-model-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServerProcess]:
    with running_auth_server(tmp_path_factory.mktemp("models-auth")) as process:
        yield process


@pytest.fixture(autouse=True)
def _server_log(request: pytest.FixtureRequest, server: AuthServerProcess) -> None:
    register_servers(request.node, [server])


@pytest.fixture(scope="module")
def api_key(server: AuthServerProcess) -> str:
    """ci-bot@acme (API key) may push to compartment team; alice writes to team and nothing else;
    compartment vault holds a repository only admin can read."""
    http = Http(server.url)
    try:
        admin = http.refresh_token("admin", ADMIN_PASSWORD)
        http.api("POST", "/api/v1/users", admin, 201,
                 json={"name": "alice", "email": "alice@example.com", "password": ALICE_PASSWORD})  # fmt: skip
        http.api("POST", "/api/v1/service-accounts", admin, 201, json={"name": "ci-bot@acme"})
        key = http.api("POST", "/api/v1/service-accounts/ci-bot@acme/keys", admin, 201, json={"expires_in_days": 1})
        for name in ("team", "vault"):
            http.api("POST", "/api/v1/compartments", admin, 201,
                     json={"name": name, "is_repository_created_on_first_push": True})  # fmt: skip
        policy = http.api("GET", "/api/v1/compartments/team/iam", admin, 200)
        policy["bindings"] += [{"role": "writer", "members": ["user:alice@example.com"]},
                               {"role": "pusher", "members": ["serviceAccount:ci-bot@acme"]}]  # fmt: skip
        http.api("PUT", "/api/v1/compartments/team/iam", admin, 200, json=policy)
    finally:
        http.close()
    return str(key["secret"])


def test_login_then_push_and_pull_with_the_stored_refresh_token(
    server: AuthServerProcess, api_key: str, config_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": str(config_dir), "MODELYARD_API_KEY": None, "MODELYARD_URL": None})
    login = runner.invoke(app, ["login", server.url, "-u", "alice", "--password-stdin"], input=ALICE_PASSWORD + "\n")
    assert login.exit_code == 0, login.output
    model = make_model(tmp_path / "m")
    pushed = runner.invoke(app, ["push", str(model), "team/llm:v1", "--json"])  # the registry logged in to last
    assert pushed.exit_code == 0, pushed.output
    digest = json.loads(pushed.stdout)["digest"]
    pulled = runner.invoke(app, ["pull", f"team/llm@{digest}", str(tmp_path / "out")])
    assert pulled.exit_code == 0, pulled.output
    assert tree(tmp_path / "out") == tree(model)

    refused = runner.invoke(app, ["push", str(model), "vault/llm:v1"])
    assert refused.exit_code == 1, refused.output
    assert "DENIED" in refused.stderr or "UNAUTHORIZED" in refused.stderr
    assert "Traceback" not in refused.output, refused.stderr


def test_api_key_push_and_a_mount_the_caller_may_not_read(
    server: AuthServerProcess, api_key: str, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(tmp_path / "m", rows=256, seed=7)
    with Registry(server.url, username="admin", password=ADMIN_PASSWORD) as admin:
        secret = admin.push_model(model, "vault/base:v1")
        assert admin.admin.get_repository("vault/base").name == "vault/base"

    monkeypatch.setenv("MODELYARD_API_KEY", api_key)
    with Registry(server.url) as bot:
        # The bot can't read vault/base: the mount is refused and the blobs are uploaded instead.
        result = bot.push_model(model, "team/derived:v1", base=f"vault/base@{secret.digest}")
        assert result.mounted_files == 0 and result.skipped_files == 0
        assert result.sent_bytes >= result.total_bytes
    monkeypatch.delenv("MODELYARD_API_KEY")

    with Registry(server.url, api_key=api_key) as bot:
        again = bot.push_model(model, "team/derived:v2")
        assert again.skipped_files == 5
        bot.pull_model("team/derived:v2", tmp_path / "out")
    assert tree(tmp_path / "out") == tree(model)

    with Registry(server.url, api_key="myd_nothere_wrongsecret") as wrong, pytest.raises(AuthenticationError) as exc:
        wrong.pull_model("team/derived:v2", tmp_path / "never")
    assert exc.value.status == 401 and exc.value.code == "UNAUTHORIZED"
