"""skopeo (Debian's 1.9.3) pushes, lists, inspects, pulls, mounts and deletes against ``modelyard serve``."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.backends import served_backend  # noqa: F401  (SQLite+files and PostgreSQL+S3)
from tests.interop.conftest import ServerFactory
from tests.interop.layouts import (
    OCI_INDEX,
    Image,
    Layout,
    build_image,
    layout_blobs,
    read_blob,
    read_layout,
    sha256,
)
from tests.interop.serverproc import ServerProcess

pytestmark = pytest.mark.interop


@pytest.fixture
def server(server_factory: ServerFactory, served_backend: str) -> ServerProcess:  # noqa: F811
    """The interop conftest's server, on each backend of ``tests/backends.py`` in turn."""
    return server_factory()


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALL_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        OCI_INDEX,
        DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class Skopeo:
    """skopeo with its own trust policy and an empty auth file (nothing from the machine leaks in)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.auth = workdir / "auth.json"
        self.auth.write_text(json.dumps({"auths": {}}))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.binary, "--policy", str(self.policy), "--command-timeout", "120s", *args]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "REGISTRY_AUTH_FILE": str(self.auth)},
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def copy(self, source: str, dest: str, *flags: str) -> None:
        tls = []
        if source.startswith("docker://"):
            tls.append("--src-tls-verify=false")
        if dest.startswith("docker://"):
            tls.append("--dest-tls-verify=false")
        self.run("copy", "--quiet", *tls, *flags, source, dest)

    def inspect(self, ref: str, *flags: str) -> str:
        return self.run("inspect", "--tls-verify=false", *flags, ref).stdout

    def list_tags(self, ref: str) -> list[str]:
        tags = json.loads(self.run("list-tags", "--tls-verify=false", ref).stdout)["Tags"]
        return sorted(tags)


@pytest.fixture
def skopeo_cli(skopeo: str, tmp_path: Path) -> Skopeo:
    return Skopeo(skopeo, tmp_path)


def http_get(url: str, accept: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def assert_serves(server: ServerProcess, repository: str, blobs: dict[str, bytes]) -> None:
    for digest, data in blobs.items():
        # On S3 the GET is a 307 to the bucket (urllib follows it), whose answer is S3's own:
        # the registry's headers are checked on a HEAD, which the registry answers itself.
        status, body, _ = http_get(f"{server.url}/v2/{repository}/blobs/{digest}")
        assert status == 200, f"{repository} does not serve {digest}: {status} {body[:200]!r}"
        assert body == data
        head = urllib.request.Request(f"{server.url}/v2/{repository}/blobs/{digest}", method="HEAD")
        with urllib.request.urlopen(head, timeout=30) as response:
            assert response.headers["Docker-Content-Digest"] == digest
            assert response.headers["Content-Length"] == str(len(data))


def push_layout_image(tmp_path: Path, sizes: list[int]) -> tuple[Layout, Image]:
    layout = Layout(tmp_path / "src-layout")
    image = build_image(sizes)
    layout.add_image("v1", image)
    return layout, image


def test_push_list_inspect_pull_and_delete(server: ServerProcess, skopeo_cli: Skopeo, tmp_path: Path) -> None:
    layout, image = push_layout_image(tmp_path, [200 * 1024, 3 * 1024 * 1024 + 17])
    ref = f"docker://{server.host}/acme/llm"

    skopeo_cli.copy(f"oci:{layout.path}:v1", f"{ref}:v1")
    skopeo_cli.copy(f"oci:{layout.path}:v1", f"{ref}:stable")
    assert skopeo_cli.list_tags(ref) == ["stable", "v1"]

    inspected = json.loads(skopeo_cli.inspect(f"{ref}:v1"))
    assert inspected["Digest"] == image.digest
    assert inspected["Architecture"] == "amd64"
    assert inspected["Layers"] == [sha256(layer) for layer in image.layers]
    # Layers were already tar+gzip: skopeo pushed our exact manifest bytes.
    assert skopeo_cli.inspect(f"{ref}:v1", "--raw").encode() == image.manifest
    assert_serves(server, "acme/llm", image.blobs)

    pulled = tmp_path / "pulled"
    skopeo_cli.copy(f"{ref}:v1", f"oci:{pulled}:v1")
    [entry] = read_layout(pulled)["manifests"]
    assert entry["digest"] == image.digest
    assert read_blob(pulled, image.digest) == image.manifest
    assert layout_blobs(pulled) == {**image.blobs, image.digest: image.manifest}

    # skopeo deletes by digest: the tag resolves to a manifest and every tag on it goes.
    skopeo_cli.run("delete", "--tls-verify=false", f"{ref}:v1")
    assert skopeo_cli.list_tags(ref) == []
    status, _, _ = http_get(f"{server.url}/v2/acme/llm/manifests/{image.digest}", ALL_MANIFESTS)
    assert status == 404
    gone = skopeo_cli.run("inspect", "--tls-verify=false", f"{ref}:stable", check=False)
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr.lower(), gone.stderr


def test_copy_between_repositories_mounts_blobs(
    server_factory: ServerFactory, skopeo_cli: Skopeo, tmp_path: Path
) -> None:
    # The access log is the server-side witness that skopeo mounted rather than re-uploaded.
    server = server_factory("--access-log")
    layout, image = push_layout_image(tmp_path, [64 * 1024, 1024 * 1024])
    skopeo_cli.copy(f"oci:{layout.path}:v1", f"docker://{server.host}/acme/llm:v1")
    skopeo_cli.copy(f"docker://{server.host}/acme/llm:v1", f"docker://{server.host}/team/llm-mirror:v1")

    mounted: dict[str, int] = {}
    for line in server.log().splitlines():
        match = re.search(r'"POST (/v2/team/llm-mirror/blobs/uploads/\?\S+) HTTP/1\.1" (\d{3})', line)
        if match:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(match.group(1)).query)
            if "mount" in query and query.get("from") == ["acme/llm"]:
                mounted[query["mount"][0]] = int(match.group(2))
    layer_digests = {sha256(layer) for layer in image.layers}
    assert layer_digests <= set(mounted), f"layers not mounted: {layer_digests - set(mounted)}\n{server.log()}"
    assert all(mounted[d] == 201 for d in layer_digests), mounted

    assert json.loads(skopeo_cli.inspect(f"docker://{server.host}/team/llm-mirror:v1"))["Digest"] == image.digest
    for repository in ("acme/llm", "team/llm-mirror"):
        assert_serves(server, repository, image.blobs)
        status, body, _ = http_get(f"{server.url}/v2/{repository}/manifests/v1", ALL_MANIFESTS)
        assert (status, body) == (200, image.manifest)


def test_multi_arch_index_push_and_pull_all(server: ServerProcess, skopeo_cli: Skopeo, tmp_path: Path) -> None:
    amd64 = build_image([128 * 1024], architecture="amd64")
    arm64 = build_image([96 * 1024, 32 * 1024], architecture="arm64")
    layout = Layout(tmp_path / "src-layout")
    index = layout.add_index("v1", [amd64, arm64])
    ref = f"docker://{server.host}/acme/multi:v1"

    skopeo_cli.copy(f"oci:{layout.path}:v1", ref, "--all")

    assert skopeo_cli.inspect(ref, "--raw").encode() == index
    # What skopeo does on the wire: one Accept line per media type (the index type not first).
    connection = http.client.HTTPConnection(server.host, timeout=30)
    connection.putrequest("GET", "/v2/acme/multi/manifests/v1")
    for media_type in ALL_MANIFESTS.split(", "):
        connection.putheader("Accept", media_type)
    connection.endheaders()
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, index)
    connection.close()
    for image in (amd64, arm64):
        raw = skopeo_cli.inspect(f"docker://{server.host}/acme/multi@{image.digest}", "--raw")
        assert raw.encode() == image.manifest
    # skopeo picks the platform's image from the index (and reports the index's digest).
    inspected = json.loads(skopeo_cli.inspect(ref, "--override-arch", "arm64"))
    assert (inspected["Architecture"], inspected["Digest"]) == ("arm64", sha256(index))
    assert inspected["Layers"] == [sha256(layer) for layer in arm64.layers]

    pulled = tmp_path / "pulled"
    skopeo_cli.copy(ref, f"oci:{pulled}:v1", "--all")
    [entry] = read_layout(pulled)["manifests"]
    assert (entry["mediaType"], entry["digest"]) == (OCI_INDEX, sha256(index))
    expected: dict[str, Any] = {sha256(index): index}
    for image in (amd64, arm64):
        expected.update(image.blobs)
        expected[image.digest] = image.manifest
    assert layout_blobs(pulled) == expected


def test_docker_schema2_push(server: ServerProcess, skopeo_cli: Skopeo, tmp_path: Path) -> None:
    layout, image = push_layout_image(tmp_path, [256 * 1024])
    ref = f"docker://{server.host}/acme/docker-format:v1"

    skopeo_cli.copy(f"oci:{layout.path}:v1", ref, "--format", "v2s2")

    raw = skopeo_cli.inspect(ref, "--raw").encode()
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP]
    assert [layer["digest"] for layer in manifest["layers"]] == [sha256(layer) for layer in image.layers]
    assert json.loads(skopeo_cli.inspect(ref))["Digest"] == sha256(raw)

    status, body, headers = http_get(f"{server.url}/v2/acme/docker-format/manifests/v1", DOCKER_MANIFEST)
    assert (status, body) == (200, raw)
    assert headers["Content-Type"] == DOCKER_MANIFEST
    assert headers["Docker-Content-Digest"] == sha256(raw)
    assert_serves(server, "acme/docker-format", {manifest["config"]["digest"]: image.config, **image.blobs})

    # Pulling into an OCI layout converts back: layers stay byte-exact; skopeo re-serialises
    # the config JSON while converting (compact separators), so compare that as JSON.
    pulled = tmp_path / "pulled"
    skopeo_cli.copy(ref, f"oci:{pulled}:v1")
    [entry] = read_layout(pulled)["manifests"]
    pulled_manifest = json.loads(read_blob(pulled, entry["digest"]))
    assert [layer["digest"] for layer in pulled_manifest["layers"]] == [sha256(layer) for layer in image.layers]
    for layer in image.layers:
        assert read_blob(pulled, sha256(layer)) == layer
    assert json.loads(read_blob(pulled, pulled_manifest["config"]["digest"])) == json.loads(image.config)
