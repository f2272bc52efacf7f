"""podman (Debian's, 4.3) against ``modelyard serve --auth``: login through the token flow, push
of an OCI and a Docker schema-2 image, an image index with ``manifest push --all``, and pull.

podman runs rootless-style on a throwaway vfs store in the test's temporary directory
(``podman run`` is not possible in this sandbox and is not needed: registry work only).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.support import ADMIN_PASSWORD, AuthServerProcess, Registry, running_auth_server
from tests.interop.layouts import Layout, build_image, sha256
from tests.interop.serverproc import register_servers

pytestmark = pytest.mark.interop

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServerProcess]:
    with running_auth_server(tmp_path_factory.mktemp("podman-server")) as process:
        yield process


@pytest.fixture(autouse=True)
def _server_log(request: pytest.FixtureRequest, server: AuthServerProcess) -> None:
    register_servers(request.node, [server])


class Podman:
    def __init__(self, root: Path) -> None:
        assert shutil.which("podman"), "podman is missing: scripts/bootstrap --system installs it"
        self.base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"),
                     "--storage-driver", "vfs"]  # fmt: skip
        auth_file = root / "auth.json"
        auth_file.write_text('{"auths": {}}')
        self.env = {"HOME": str(root), "PATH": "/usr/bin:/bin", "REGISTRY_AUTH_FILE": str(auth_file)}

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, timeout=120, env=self.env, check=False
        )
        if ok:
            assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr[-2000:]}"
        return done


@pytest.fixture
def podman() -> Iterator[Podman]:
    # podman refuses a runroot path longer than 50 characters: pytest's tmp_path is too deep.
    root = Path(tempfile.mkdtemp(prefix="my-podman-", dir="/tmp"))
    try:
        yield Podman(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def token_admin(registry: Registry) -> str:
    """The admin API's credential from a login: the refresh token (access tokens are for /v2 only)."""
    return registry.refresh_token("admin", ADMIN_PASSWORD)


def _manifest(registry: Registry, token: str, repo: str, reference: str, accept: str) -> tuple[str, bytes, str]:
    response = registry.request("GET", f"/v2/{repo}/manifests/{reference}", token, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    return response.headers["Content-Type"], response.content, response.headers["Docker-Content-Digest"]


def test_login_push_and_pull(server: AuthServerProcess, podman: Podman, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    image = build_image([4096, 1024])
    layout.add_image("v1", image)
    podman("pull", "-q", f"oci:{layout.path}:v1")
    image_id = podman("images", "-q").stdout.split()[0]
    target = f"{server.host}/acme/podman"

    anonymous = podman("push", "--tls-verify=false", image_id, f"{target}:v1", ok=False)
    assert anonymous.returncode != 0 and "denied" in anonymous.stderr  # containers/image's word for our 401

    login = podman("login", "--tls-verify=false", "-u", "admin", "--password-stdin", server.host,
                   stdin=ADMIN_PASSWORD + "\n")  # fmt: skip
    assert "Login Succeeded" in login.stdout
    podman("push", "--tls-verify=false", image_id, f"{target}:v1")
    podman("push", "--tls-verify=false", "--format", "v2s2", image_id, f"{target}:v2s2")

    registry = Registry(server.url)
    try:
        token = registry.token("repository:acme/podman:pull", auth=("admin", ADMIN_PASSWORD))
        tags = registry.request("GET", "/v2/acme/podman/tags/list", token).json()["tags"]
        assert tags == ["v1", "v2s2"]  # and nothing from the anonymous attempt
        creators = {
            e["actor"] for e in registry.api("GET", "/api/v1/audit?action=push", token_admin(registry), 200)["items"]
        }
        assert creators == {"user:admin"}
        kind, body, digest = _manifest(registry, token, "acme/podman", "v2s2", DOCKER_MANIFEST)
        assert kind == DOCKER_MANIFEST and digest == sha256(body)
        for layer in json.loads(body)["layers"]:  # every layer podman sent is stored and verifies
            blob = registry.request("GET", f"/v2/acme/podman/blobs/{layer['digest']}", token)
            assert blob.status_code == 200 and sha256(blob.content) == layer["digest"]
    finally:
        registry.close()

    podman("rmi", "-a", "-f")
    podman("pull", "--tls-verify=false", f"{target}:v1")
    assert podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split() == [f"{target}:v1"]


def test_manifest_push_all_sends_an_index(server: AuthServerProcess, podman: Podman, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    images = {arch: build_image([2048], architecture=arch) for arch in ("amd64", "arm64")}
    for arch, image in images.items():
        layout.add_image(arch, image)
    podman("login", "--tls-verify=false", "-u", "admin", "--password-stdin", server.host, stdin=ADMIN_PASSWORD + "\n")
    podman("manifest", "create", "multi")
    for arch in images:
        podman("manifest", "add", "multi", f"oci:{layout.path}:{arch}")
    target = f"{server.host}/acme/multi:latest"
    podman("manifest", "push", "--all", "--tls-verify=false", "multi", f"docker://{target}")

    registry = Registry(server.url)
    try:
        token = registry.token("repository:acme/multi:pull", auth=("admin", ADMIN_PASSWORD))
        accept = f"{OCI_INDEX}, application/vnd.docker.distribution.manifest.list.v2+json"
        kind, body, _ = _manifest(registry, token, "acme/multi", "latest", accept)
        assert kind in (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json")
        children = json.loads(body)["manifests"]
        assert sorted(c["platform"]["architecture"] for c in children) == ["amd64", "arm64"]
        for child in children:  # every child was pushed by digest before the index
            found = registry.request("GET", f"/v2/acme/multi/manifests/{child['digest']}", token,
                                     headers={"Accept": child["mediaType"]})  # fmt: skip
            assert found.status_code == 200 and sha256(found.content) == child["digest"]
    finally:
        registry.close()
