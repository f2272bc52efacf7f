"""The control plane as a real client meets it: skopeo (Debian's 1.9.3) pushing to ``modelyard serve``.

Create-on-first-push on and off (skopeo shows our NAME_UNKNOWN message), immutable tags (a
different image under the same tag fails with our message and the tag stays; the same image
again succeeds), ``v*`` immutable with ``latest`` mutable, and repository statistics matching
the blobs of the layout that was pushed. Settings are made through the admin API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.layouts import Image, Layout, build_image
from tests.interop.serverproc import ServerProcess
from tests.interop.test_skopeo import Skopeo

pytestmark = pytest.mark.interop

ACCEPT = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def skopeo_cli(skopeo: str, tmp_path: Path) -> Skopeo:
    return Skopeo(skopeo, tmp_path)


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def admin(api: httpx.Client, method: str, path: str, status: int, body: Any = None) -> Any:
    response = api.request(method, path, json=body)
    assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def layout_with(tmp_path: Path, *images: tuple[str, Image]) -> Layout:
    layout = Layout(tmp_path / "layout")
    for tag, image in images:
        layout.add_image(tag, image)
    return layout


def tag_digest(server: ServerProcess, repository: str, tag: str) -> str | None:
    response = httpx.head(f"{server.url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=30)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


def push(
    skopeo: Skopeo, layout: Layout, source_tag: str, server: ServerProcess, target: str, check: bool = True
) -> Any:
    args = [
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        f"oci:{layout.path}:{source_tag}",
        f"docker://{server.host}/{target}",
    ]
    return skopeo.run(*args, check=check)


# -- create on first push ------------------------------------------------------------------------


def test_first_push_creates_a_private_mutable_repository(
    server: ServerProcess, skopeo_cli: Skopeo, api: httpx.Client, tmp_path: Path
) -> None:
    first, second = build_image([4096]), build_image([2048])
    layout = layout_with(tmp_path, ("one", first), ("two", second))
    push(skopeo_cli, layout, "one", server, "acme/llm:v1")

    repo = admin(api, "GET", "/api/v1/repositories/acme/llm", 200)
    assert repo["is_public"] is False
    assert repo["is_immutable"] is False
    assert (repo["compartment_id"], repo["display_name"]) == ("acme", "llm")
    assert repo["url"] == f"{server.host}/acme/llm"
    compartment = admin(api, "GET", "/api/v1/compartments/acme", 200)
    assert compartment["repository_count"] == 1
    # Mutable: the tag moves.
    push(skopeo_cli, layout, "two", server, "acme/llm:v1")
    assert tag_digest(server, "acme/llm", "v1") == second.digest


@pytest.mark.parametrize("where", ["compartment-setting", "registry-default", "missing-compartment", "root"])
def test_first_push_refused_shows_our_message(
    server: ServerProcess, skopeo_cli: Skopeo, api: httpx.Client, tmp_path: Path, where: str
) -> None:
    target, advice = {
        "compartment-setting": ("acme/llm", "modelyard compartment update acme --create-on-first-push"),
        "registry-default": ("acme/llm", "modelyard repo create acme/llm"),
        "missing-compartment": ("ghost/llm", "modelyard compartment create ghost"),
        "root": ("solo", "modelyard config set --create-on-first-push"),
    }[where]
    if where == "compartment-setting":
        admin(api, "POST", "/api/v1/compartments", 201, {"name": "acme", "is_repository_created_on_first_push": False})
    else:
        config = {"is_repository_created_on_first_push": False, "is_compartment_created_on_first_push": False}
        admin(api, "PUT", "/api/v1/configuration", 200, config)
        if where == "registry-default":
            admin(api, "POST", "/api/v1/compartments", 201, {"name": "acme"})  # inherits "off"
    layout = layout_with(tmp_path, ("one", build_image([4096])))

    result = push(skopeo_cli, layout, "one", server, f"{target}:v1", check=False)
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())  # skopeo may wrap lines
    assert "name unknown" in output.lower(), output
    assert f"{target} does not exist" in output, output
    assert advice in output, output
    assert api.get(f"/api/v1/repositories/{target}").status_code == 404

    # Following the advice, the same push goes through.
    if where == "missing-compartment":
        admin(api, "POST", "/api/v1/compartments", 201, {"name": "ghost", "is_repository_created_on_first_push": True})
    else:
        compartment, _, display_name = target.rpartition("/")
        spec = {"compartment_id": compartment or None, "display_name": display_name}
        admin(api, "POST", "/api/v1/repositories", 201, spec)
    push(skopeo_cli, layout, "one", server, f"{target}:v1")
    assert admin(api, "GET", f"/api/v1/repositories/{target}", 200)["image_count"] == 1


# -- immutable tags -----------------------------------------------------------------------------------


def test_immutable_tag_refuses_another_image_and_accepts_the_same_again(
    server: ServerProcess, skopeo_cli: Skopeo, api: httpx.Client, tmp_path: Path
) -> None:
    admin(api, "POST", "/api/v1/compartments", 201, {"name": "acme"})
    spec = {"compartment_id": "acme", "display_name": "llm", "is_immutable": True}
    admin(api, "POST", "/api/v1/repositories", 201, spec)
    first, second = build_image([8192]), build_image([8192])
    layout = layout_with(tmp_path, ("one", first), ("two", second))

    push(skopeo_cli, layout, "one", server, "acme/llm:v1")
    refused = push(skopeo_cli, layout, "two", server, "acme/llm:v1", check=False)
    assert refused.returncode != 0
    output = " ".join((refused.stdout + refused.stderr).split())
    assert "tag v1 of acme/llm is immutable" in output, output
    assert first.digest in output, output
    assert tag_digest(server, "acme/llm", "v1") == first.digest

    # The same image under the same tag again: idempotent, accepted.
    push(skopeo_cli, layout, "one", server, "acme/llm:v1")
    assert tag_digest(server, "acme/llm", "v1") == first.digest
    # The refused image can still go under a new tag.
    push(skopeo_cli, layout, "two", server, "acme/llm:v2")
    versions = admin(api, "GET", "/api/v1/repositories/acme/llm/-/versions", 200)["items"]
    assert {v["tag"]: (v["digest"], v["immutable"]) for v in versions} == {
        "v1": (first.digest, True),
        "v2": (second.digest, True),
    }
    # skopeo delete (by digest) of an immutable version is refused too.
    deleted = skopeo_cli.run("delete", "--tls-verify=false", f"docker://{server.host}/acme/llm:v1", check=False)
    assert deleted.returncode != 0
    assert "immutable" in deleted.stderr, deleted.stderr
    assert tag_digest(server, "acme/llm", "v1") == first.digest


def test_versions_immutable_and_latest_mutable(
    server: ServerProcess, skopeo_cli: Skopeo, api: httpx.Client, tmp_path: Path
) -> None:
    admin(api, "POST", "/api/v1/compartments", 201, {"name": "acme"})
    spec = {
        "compartment_id": "acme",
        "display_name": "llm",
        "immutable_tag_patterns": ["v*"],
        "mutable_tag_exclusions": ["latest"],
    }
    admin(api, "POST", "/api/v1/repositories", 201, spec)
    first, second = build_image([4096]), build_image([4096])
    layout = layout_with(tmp_path, ("one", first), ("two", second))
    for tag in ("v1.0", "latest", "dev"):
        push(skopeo_cli, layout, "one", server, f"acme/llm:{tag}")

    push(skopeo_cli, layout, "two", server, "acme/llm:latest")
    push(skopeo_cli, layout, "two", server, "acme/llm:dev")
    refused = push(skopeo_cli, layout, "two", server, "acme/llm:v1.0", check=False)
    assert refused.returncode != 0
    assert "immutable" in refused.stderr, refused.stderr
    assert tag_digest(server, "acme/llm", "v1.0") == first.digest
    assert tag_digest(server, "acme/llm", "latest") == second.digest
    assert tag_digest(server, "acme/llm", "dev") == second.digest

    # Turning the patterns off lets the version move.
    admin(api, "PATCH", "/api/v1/repositories/acme/llm", 200, {"immutable_tag_patterns": []})
    push(skopeo_cli, layout, "two", server, "acme/llm:v1.0")
    assert tag_digest(server, "acme/llm", "v1.0") == second.digest


# -- statistics -------------------------------------------------------------------------------------


def test_statistics_match_the_pushed_layout(
    server: ServerProcess, skopeo_cli: Skopeo, api: httpx.Client, tmp_path: Path
) -> None:
    first = build_image([300 * 1024, 64 * 1024 + 7])
    second = build_image([1024 * 1024 + 3])
    layout = layout_with(tmp_path, ("one", first), ("two", second))
    push(skopeo_cli, layout, "one", server, "acme/llm:v1")

    repo = admin(api, "GET", "/api/v1/repositories/acme/llm", 200)
    assert repo["image_count"] == 1
    assert repo["layer_count"] == len(first.blobs)  # config and layers
    assert repo["layers_size_in_bytes"] == sum(len(blob) for blob in first.blobs.values())
    assert repo["time_last_pushed"] is not None

    push(skopeo_cli, layout, "two", server, "acme/llm:v2")
    blobs = {**first.blobs, **second.blobs}
    repo = admin(api, "GET", "/api/v1/repositories/acme/llm", 200)
    assert repo["image_count"] == 2
    assert repo["layer_count"] == len(blobs)
    assert repo["layers_size_in_bytes"] == sum(len(blob) for blob in blobs.values())

    versions = admin(api, "GET", "/api/v1/repositories/acme/llm/-/versions", 200)["items"]
    assert [(v["tag"], v["digest"], v["size"]) for v in versions] == [
        ("v1", first.digest, len(first.manifest)),
        ("v2", second.digest, len(second.manifest)),
    ]
    assert all(v["media_type"] == ACCEPT for v in versions)
