"""Real clients through the token flow against ``modelyard serve --auth``: skopeo (login, a
user's password and a service account's API key), oras-py's token backend, anonymous pulls of
public repositories, the ``modelyard`` CLI (login, whoami, iam), and the first administrator's
generated password.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oras.client
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from tests.auth.support import ADMIN_PASSWORD, AuthServerProcess, Registry, basic, running_auth_server
from tests.helpers import bounded
from tests.interop.layouts import Layout, build_image, layout_blobs, read_layout, sha256
from tests.interop.serverproc import register_servers

pytestmark = pytest.mark.interop

USER_PASSWORD = "alice-client-password"
ARTIFACT_TYPE = "application/vnd.acme.model.config.v1+json"
WEIGHTS_TYPE = "application/vnd.acme.model.weights.v1.tar"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServerProcess]:
    with running_auth_server(tmp_path_factory.mktemp("clients")) as process:
        yield process


@pytest.fixture(autouse=True)
def _server_log(request: pytest.FixtureRequest, server: AuthServerProcess) -> None:
    register_servers(request.node, [server])


@pytest.fixture(scope="module")
def accounts(server: AuthServerProcess) -> dict[str, str]:
    """alice (a user, writer on compartment team), ci-bot@acme (a service account with an API
    key, pusher on team) and a public repository pub/model."""
    registry = Registry(server.url)
    try:
        admin = registry.refresh_token("admin", ADMIN_PASSWORD)
        registry.api("POST", "/api/v1/users", admin, 201,
                     json={"name": "alice", "email": "alice@example.com", "password": USER_PASSWORD})  # fmt: skip
        registry.api("POST", "/api/v1/service-accounts", admin, 201, json={"name": "ci-bot@acme"})
        key = registry.api("POST", "/api/v1/service-accounts/ci-bot@acme/keys", admin, 201, json={"expires_in_days": 1})
        registry.api("POST", "/api/v1/compartments", admin, 201,
                     json={"name": "team", "is_repository_created_on_first_push": True})  # fmt: skip
        registry.api("POST", "/api/v1/compartments", admin, 201, json={"name": "pub"})
        registry.api("POST", "/api/v1/repositories", admin, 201,
                     json={"compartment_id": "pub", "display_name": "model", "is_public": True})  # fmt: skip
        policy = registry.api("GET", "/api/v1/compartments/team/iam", admin, 200)
        policy["bindings"] += [{"role": "writer", "members": ["user:alice@example.com"]},
                               {"role": "pusher", "members": ["serviceAccount:ci-bot@acme"]}]  # fmt: skip
        registry.api("PUT", "/api/v1/compartments/team/iam", admin, 200, json=policy)
    finally:
        registry.close()
    return {"alice": USER_PASSWORD, "ci-bot@acme": str(key["secret"])}


class Skopeo:
    """skopeo with its own trust policy and auth file: nothing from the machine leaks in."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.authfile = workdir / "auth.json"
        self.authfile.write_text(json.dumps({"auths": {}}))

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, "--policy", str(self.policy), "--command-timeout", "120s", *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=180, check=False,
                                env={**os.environ, "REGISTRY_AUTH_FILE": str(self.authfile)})  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.fail("skopeo is not installed: run scripts/bootstrap --system (it installs Debian's skopeo)")
    return Skopeo(binary, tmp_path)


def layout_with_image(path: Path) -> tuple[Layout, Any]:
    layout = Layout(path)
    image = build_image([8 * 1024, 64 * 1024])
    layout.add_image("v1", image)
    return layout, image


def assert_pulled(path: Path, image: Any) -> None:
    [entry] = read_layout(path)["manifests"]
    assert entry["digest"] == image.digest
    assert layout_blobs(path) == {**image.blobs, image.digest: image.manifest}


# -- skopeo -------------------------------------------------------------------------------------


def test_skopeo_login_push_pull_logout(
    server: AuthServerProcess, accounts: dict[str, str], skopeo: Skopeo, tmp_path: Path
) -> None:
    refused = skopeo.run("login", "--tls-verify=false", "-u", "alice", "--password-stdin", server.host,
                         stdin="not her password\n", check=False)  # fmt: skip
    assert refused.returncode != 0
    assert json.loads(skopeo.authfile.read_text())["auths"] == {}

    login = skopeo.run("login", "--authfile", str(skopeo.authfile), "--tls-verify=false", "-u", "alice",
                       "--password-stdin", server.host, stdin=accounts["alice"] + "\n")  # fmt: skip
    assert "Login Succeeded" in login.stdout
    assert server.host in json.loads(skopeo.authfile.read_text())["auths"]

    layout, image = layout_with_image(tmp_path / "src")
    ref = f"docker://{server.host}/team/model"
    skopeo.run("copy", "--quiet", "--dest-tls-verify=false", "--authfile", str(skopeo.authfile),
               f"oci:{layout.path}:v1", f"{ref}:v1")  # fmt: skip
    listed = skopeo.run("list-tags", "--tls-verify=false", "--authfile", str(skopeo.authfile), ref)
    assert json.loads(listed.stdout)["Tags"] == ["v1"]
    pulled = tmp_path / "pulled"
    skopeo.run("copy", "--quiet", "--src-tls-verify=false", "--authfile", str(skopeo.authfile),
               f"{ref}:v1", f"oci:{pulled}:v1")  # fmt: skip
    assert_pulled(pulled, image)

    skopeo.run("logout", "--authfile", str(skopeo.authfile), server.host)
    after = skopeo.run("list-tags", "--tls-verify=false", "--authfile", str(skopeo.authfile), ref, check=False)
    assert after.returncode != 0
    assert "authentication required" in after.stderr.lower() or "unauthorized" in after.stderr.lower(), after.stderr


def test_skopeo_creds_for_a_user_and_a_service_account_key(
    server: AuthServerProcess, accounts: dict[str, str], skopeo: Skopeo, tmp_path: Path
) -> None:
    layout, image = layout_with_image(tmp_path / "src")
    ref = f"docker://{server.host}/team/built-by-ci"
    key = accounts["ci-bot@acme"]
    skopeo.run("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", f"ci-bot@acme:{key}",
               f"oci:{layout.path}:v1", f"{ref}:build-1")  # fmt: skip
    inspected = skopeo.run("inspect", "--tls-verify=false", "--creds", f"alice:{accounts['alice']}", f"{ref}:build-1")
    assert json.loads(inspected.stdout)["Digest"] == image.digest
    pulled = tmp_path / "pulled"
    skopeo.run("copy", "--quiet", "--src-tls-verify=false", "--src-creds", f"ci-bot@acme:{key}",
               f"{ref}:build-1", f"oci:{pulled}:v1")  # fmt: skip
    assert_pulled(pulled, image)

    # ci-bot is a pusher: it may not move the tag; alice (writer) may.
    other_layout, other = layout_with_image(tmp_path / "other")
    moved = skopeo.run("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", f"ci-bot@acme:{key}",
                       f"oci:{other_layout.path}:v1", f"{ref}:build-1", check=False)  # fmt: skip
    assert moved.returncode != 0
    assert "denied" in moved.stderr.lower(), moved.stderr
    skopeo.run("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", f"alice:{accounts['alice']}",
               f"oci:{other_layout.path}:v1", f"{ref}:build-1")  # fmt: skip
    inspected = skopeo.run("inspect", "--tls-verify=false", "--creds", f"ci-bot@acme:{key}", f"{ref}:build-1")
    assert json.loads(inspected.stdout)["Digest"] == other.digest


def test_anonymous_pull_of_a_public_repository_and_refused_push(
    server: AuthServerProcess, accounts: dict[str, str], skopeo: Skopeo, tmp_path: Path
) -> None:
    layout, image = layout_with_image(tmp_path / "src")
    public = f"docker://{server.host}/pub/model"
    skopeo.run("copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", f"admin:{ADMIN_PASSWORD}",
               f"oci:{layout.path}:v1", f"{public}:v1")  # fmt: skip

    pulled = tmp_path / "pulled"
    skopeo.run("copy", "--quiet", "--src-tls-verify=false", "--src-no-creds", f"{public}:v1", f"oci:{pulled}:v1")
    assert_pulled(pulled, image)
    tags = skopeo.run("list-tags", "--tls-verify=false", "--no-creds", public)
    assert json.loads(tags.stdout)["Tags"] == ["v1"]

    for target in (f"{public}:anonymous", f"docker://{server.host}/team/model:anonymous"):
        pushed = skopeo.run("copy", "--quiet", "--dest-tls-verify=false", "--dest-no-creds",
                            f"oci:{layout.path}:v1", target, check=False)  # fmt: skip
        assert pushed.returncode != 0, target
        message = pushed.stderr.lower()
        assert any(word in message for word in ("authentication required", "unauthorized", "denied")), message
    private = skopeo.run("inspect", "--tls-verify=false", "--no-creds", f"docker://{server.host}/team/model:v1",
                         check=False)  # fmt: skip
    assert private.returncode != 0


# -- oras-py --------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """oras-py only pushes files below the working directory, and keeps logins in a config file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path


@pytest.mark.parametrize("who", ["alice", "ci-bot@acme"])
def test_oras_token_auth_push_and_pull(
    server: AuthServerProcess, accounts: dict[str, str], workdir: Path, who: str
) -> None:
    client = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="token")
    client.login(username=who, password=accounts[who], hostname=server.host, config_path=str(workdir / "config.json"))
    weights = os.urandom(256 * 1024 + 7)
    (workdir / "weights.bin").write_bytes(weights)
    (workdir / "config.json.model").write_text(json.dumps({"framework": "pytorch"}))
    target = f"{server.host}/team/oras-{who.split('@', maxsplit=1)[0]}:v1"
    response = bounded(
        client.push,
        target=target,
        files=[f"weights.bin:{WEIGHTS_TYPE}"],
        manifest_config=f"config.json.model:{ARTIFACT_TYPE}",
        disable_path_validation=True,
    )
    assert response.status_code == 201, response.text

    out = workdir / "out"
    files = bounded(client.pull, target=target, outdir=str(out))
    assert [Path(f).read_bytes() for f in files] == [weights]
    manifest = bounded(client.get_manifest, target)
    assert manifest["config"]["mediaType"] == ARTIFACT_TYPE
    assert manifest["layers"][0]["digest"] == sha256(weights)


def test_oras_anonymous_pull_of_a_public_repository(
    server: AuthServerProcess, accounts: dict[str, str], workdir: Path
) -> None:
    owner = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="token")
    owner.login(username="admin", password=ADMIN_PASSWORD, hostname=server.host,
                config_path=str(workdir / "config.json"))  # fmt: skip
    card = b"# model card\n"
    (workdir / "README.md").write_bytes(card)
    target = f"{server.host}/pub/model:card"
    assert bounded(owner.push, target=target, files=["README.md:text/markdown"], disable_path_validation=True).ok

    anonymous = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="token")
    files = bounded(anonymous.pull, target=target, outdir=str(workdir / "anon"))
    assert [Path(f).read_bytes() for f in files] == [card]
    assert "card" in bounded(anonymous.get_tags, f"{server.host}/pub/model")


# -- the modelyard CLI -----------------------------------------------------------------------------


def test_cli_commands_default_to_the_registry_logged_in_to_last(server: AuthServerProcess, tmp_path: Path) -> None:
    """The README's path: `modelyard login http://localhost:PORT`, then commands without
    --registry. They used to ask http://127.0.0.1:5000 anonymously (credentials were stored
    under the login's URL), so whoami said `anonymous` and creating a compartment got 401."""
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": str(tmp_path / "config"), "MODELYARD_URL": None,
                            "MODELYARD_API_KEY": None, "NO_COLOR": "1"})  # fmt: skip
    localhost = f"http://localhost:{server.port}"
    login = runner.invoke(app, ["login", localhost, "-u", "admin", "--password-stdin"], input=ADMIN_PASSWORD + "\n")
    assert login.exit_code == 0, login.output

    whoami = runner.invoke(app, ["whoami"])
    assert whoami.exit_code == 0, whoami.output
    assert whoami.output.strip() == f"user:admin at {localhost}"
    created = runner.invoke(app, ["compartment", "create", "defaulted", "--json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["name"] == "defaulted"
    # --registry still wins over the remembered one, and logging out forgets it as the default.
    elsewhere = runner.invoke(app, ["whoami", "--registry", "http://127.0.0.1:9"])
    assert elsewhere.exit_code == 3
    assert runner.invoke(app, ["logout"]).exit_code == 0
    assert runner.invoke(app, ["whoami"]).exit_code == 3  # back to http://127.0.0.1:5000: nothing there


def test_cli_login_whoami_and_iam(server: AuthServerProcess, accounts: dict[str, str], tmp_path: Path) -> None:
    config_dir = tmp_path / "modelyard-config"
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": str(config_dir), "MODELYARD_URL": server.url,
                            "MODELYARD_API_KEY": None, "COLUMNS": "200", "NO_COLOR": "1"})  # fmt: skip

    def cli(*args: str, stdin: str | None = None, code: int = 0) -> str:
        result = runner.invoke(app, list(args), input=stdin)
        assert result.exit_code == code, f"modelyard {' '.join(args)}: {result.exit_code}\n{result.output}"
        return result.output

    assert cli("whoami").strip() == f"anonymous at {server.url}"
    assert "refused" in cli("login", server.url, "--username", "admin", "--password-stdin", stdin="wrong\n", code=1)
    assert "Login Succeeded" in cli("login", server.url, "--username", "admin", "--password-stdin",
                                    stdin=ADMIN_PASSWORD + "\n")  # fmt: skip
    credentials = config_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    stored = credentials.read_text()
    assert ADMIN_PASSWORD not in stored and "refresh_token" in stored
    assert cli("whoami").strip() == f"user:admin at {server.url}"

    shown = cli("iam", "add-binding", "--role", "reader", "--member", "user:alice@example.com", "--repo", "pub/model")
    assert "user:alice@example.com" in shown
    policy = json.loads(cli("iam", "show", "--repo", "pub/model", "--json"))
    readers = [b for b in policy["bindings"] if b["role"] == "reader"]
    assert {m for b in readers for m in b["members"]} == {"allUsers", "user:alice@example.com"}
    public = json.loads(cli("repo", "show", "pub/model", "--json"))
    assert public["is_public"] is True  # adding a reader kept the repository public
    cli("iam", "remove-binding", "--role", "reader", "--member", "user:alice@example.com", "--repo", "pub/model")
    assert "user:alice@example.com" not in cli("iam", "show", "--repo", "pub/model")

    cli("iam", "add-binding", "--role", "repoAdmin", "--member", "group:ml", "--compartment", "team")
    compartment = json.loads(cli("iam", "show", "--compartment", "team", "--json"))
    assert {"role": "repoAdmin", "members": ["group:ml"]} in compartment["bindings"]
    cli("iam", "remove-binding", "--role", "repoAdmin", "--member", "group:ml", "--compartment", "team")
    assert "group:ml" not in cli("iam", "show", "--compartment", "team")
    registry_policy = json.loads(cli("iam", "show", "--json"))
    assert {"role": "admin", "members": ["user:admin"]} in registry_policy["bindings"]
    last = cli("iam", "remove-binding", "--role", "admin", "--member", "user:admin", code=1)
    assert "CONFLICT" in last, last

    # A user logs in with an email address too; its own identity, not the admin's.
    alice_dir = tmp_path / "alice-config"
    alice = CliRunner(env={"MODELYARD_CONFIG_DIR": str(alice_dir), "MODELYARD_URL": server.url,
                           "MODELYARD_API_KEY": None, "NO_COLOR": "1"})  # fmt: skip
    result = alice.invoke(app, ["login", server.url, "-u", "alice", "--password-stdin"], input=USER_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert alice.invoke(app, ["whoami"]).output.strip() == f"user:alice at {server.url}"
    denied = alice.invoke(
        app, ["iam", "add-binding", "--role", "admin", "--member", "user:alice", "--repo", "pub/model"]
    )
    assert denied.exit_code == 1 and "DENIED" in denied.output, denied.output

    assert "logged out" in cli("logout", server.url)
    assert "UNAUTHORIZED" in cli("user", "list", code=1)


def test_cli_audit_shows_logins(server: AuthServerProcess, accounts: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": None, "MODELYARD_URL": server.url,
                            "MODELYARD_API_KEY": None, "COLUMNS": "200", "NO_COLOR": "1"})  # fmt: skip
    registry = Registry(server.url)
    try:
        admin = registry.refresh_token("admin", ADMIN_PASSWORD)
        registry.api("POST", "/api/v1/service-accounts", admin, 201, json={"name": "auditor"})
        policy = registry.api("GET", "/api/v1/iam", admin, 200)
        policy["bindings"].append({"role": "admin", "members": ["serviceAccount:auditor"]})
        registry.api("PUT", "/api/v1/iam", admin, 200, json=policy)
        key = registry.api("POST", "/api/v1/service-accounts/auditor/keys", admin, 201, json={})["secret"]
    finally:
        registry.close()
    environment = {"MODELYARD_API_KEY": key, "MODELYARD_CONFIG_DIR": str(tmp_path)}
    result = runner.invoke(app, ["audit", "--action", "login", "--json"], env=environment)
    assert result.exit_code == 0, result.output
    events = json.loads(result.output)
    assert {"user:admin", "user:alice"} <= {e["actor"] for e in events if e["outcome"] == "success"}
    assert key not in result.output and ADMIN_PASSWORD not in result.output


# -- the first administrator -------------------------------------------------------------------


def test_generated_admin_password_is_printed_once(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = AuthServerProcess(tmp_path / "data", tmp_path / "fresh.log", extra=("--auth", "--no-access-log"), env={})
    register_servers(request.node, [server])
    try:
        server.start()
        stderr = server.stderr()
        match = re.search(r"generated password\s+(\S+)", stderr)
        assert match, f"no generated password on stderr:\n{stderr}"
        password = match.group(1)
        assert len(password) >= 16
        assert stderr.count(password) == 1
        assert password not in server.log_path.read_text(), "the password went to stdout too"

        registry = Registry(server.url)
        try:
            assert registry.token_response(auth=("admin", password)).status_code == 200
            assert registry.token_response(auth=("admin", "admin")).status_code == 401
            assert registry.token_response(auth=("admin", "")).status_code == 401
        finally:
            registry.close()

        server.stop()
        server.start()
        second = server.stderr().split("--- start #2 ---", 1)[1]
        assert "generated password" not in second and password not in second, second
        registry = Registry(server.url)
        try:
            response = registry.http.get("/api/v1/me", headers={"Authorization": basic("admin", password)})
            assert response.json()["subject"] == "user:admin"
        finally:
            registry.close()
    finally:
        server.stop()
