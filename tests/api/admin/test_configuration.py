"""``/api/v1/configuration`` and the create-on-first-push rules, proved through real ``/v2`` pushes.

The matrix: the registry default (``is_repository_created_on_first_push``) on/off, whether a push
may create a compartment on/off, and the compartment's own setting true / false / null (inherit)
for a compartment that exists, one that does not, and the root compartment (a one-component
name, governed by the registry default alone).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from modelyard.app import create_app
from modelyard.config import Settings
from tests.api.admin.support import (
    Client,
    call,
    compartment,
    error,
    get_repository,
    invalid_fields,
    repository,
    set_registry_config,
)
from tests.api.support import raw_request
from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, image_manifest, push_blob, push_image, sha256

CONFIG = "/api/v1/configuration"


# -- the registry-level configuration -------------------------------------------------------------


async def test_defaults_create_everything_on_first_push(client: Client) -> None:
    assert await call(client, "GET", CONFIG, 200) == {
        "is_repository_created_on_first_push": True,
        "is_compartment_created_on_first_push": True,
    }


@pytest.mark.parametrize(("repositories", "compartments"), list(itertools.product([True, False], repeat=2)))
async def test_put_round_trips(client: Client, repositories: bool, compartments: bool) -> None:
    await set_registry_config(client, repositories=repositories, compartments=compartments)
    assert await call(client, "GET", CONFIG, 200) == {
        "is_repository_created_on_first_push": repositories,
        "is_compartment_created_on_first_push": compartments,
    }


async def test_configuration_survives_a_restart(
    make_client: ClientFactory, aiohttp_client: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "registry"
    first = await make_client(data_dir=data_dir)
    await set_registry_config(first, repositories=False, compartments=True)
    await compartment(first, "acme", is_repository_created_on_first_push=True)
    await compartment(first, "beta")
    await first.close()

    # A new app on the same data directory (make_client would start from a fresh database).
    settings = Settings(data_dir=data_dir, fsync=False, access_log=False, auth_enabled=False)
    second = await aiohttp_client(create_app(settings))
    config = await call(second, "GET", CONFIG, 200)
    assert config["is_repository_created_on_first_push"] is False
    acme = await call(second, "GET", "/api/v1/compartments/acme/configuration", 200)
    assert acme["is_repository_created_on_first_push"] is True
    beta = await call(second, "GET", "/api/v1/compartments/beta/configuration", 200)
    assert beta["is_repository_created_on_first_push"] is None
    assert beta["effective_is_repository_created_on_first_push"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_compartment_created_on_first_push": True}, "is_repository_created_on_first_push"),
        ({"is_repository_created_on_first_push": True}, "is_compartment_created_on_first_push"),
        (
            {"is_repository_created_on_first_push": None, "is_compartment_created_on_first_push": True},
            "is_repository_created_on_first_push",
        ),
        (
            {"is_repository_created_on_first_push": "maybe", "is_compartment_created_on_first_push": True},
            "is_repository_created_on_first_push",
        ),
        (
            {
                "is_repository_created_on_first_push": True,
                "is_compartment_created_on_first_push": True,
                "is_everything_allowed": True,
            },
            "is_everything_allowed",
        ),
    ],
)
async def test_put_validation_is_422_naming_the_field(client: Client, body: dict[str, Any], field: str) -> None:
    await set_registry_config(client, repositories=False, compartments=False)
    assert field in await invalid_fields(client, "PUT", CONFIG, json=body)
    assert await call(client, "GET", CONFIG, 200) == {
        "is_repository_created_on_first_push": False,
        "is_compartment_created_on_first_push": False,
    }


async def test_put_without_a_body_is_422(client: Client) -> None:
    fields = await invalid_fields(client, "PUT", CONFIG)
    assert set(fields) == {"is_repository_created_on_first_push", "is_compartment_created_on_first_push"}


# -- the create-on-first-push matrix, through /v2 ---------------------------------------------------

BOOLS = [True, False]
SETTINGS = [True, False, None]


def _id(value: object) -> str:
    return {True: "on", False: "off", None: "inherit"}[value]  # type: ignore[index]


async def assert_push_refused(client: Client, name: str) -> str:
    """Every way a push can start is refused with NAME_UNKNOWN; nothing is created. Returns the message."""
    started = await client.post(f"/v2/{name}/blobs/uploads/")
    assert started.status == 404, await started.text()
    first = (await started.json())["errors"][0]
    assert first["code"] == "NAME_UNKNOWN"
    assert first["detail"]["name"] == name
    message: str = first["message"]
    assert name in message

    mount = await client.post(
        f"/v2/{name}/blobs/uploads/", params={"mount": sha256(b"anything"), "from": "elsewhere/repo"}
    )
    assert mount.status == 404
    assert (await mount.json())["errors"][0]["code"] == "NAME_UNKNOWN"

    # A manifest whose blobs are missing is refused for the name, not for the blobs.
    body = image_manifest(b"{}", [b"layer"])
    put = await client.put(f"/v2/{name}/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert put.status == 404, await put.text()
    assert (await put.json())["errors"][0]["code"] == "NAME_UNKNOWN"

    await error(client, "GET", f"/api/v1/repositories/{name}", 404, "NOT_FOUND")
    tags = await client.get(f"/v2/{name}/tags/list")
    assert tags.status == 404
    catalog = await (await client.get("/v2/_catalog")).json()
    assert name not in catalog["repositories"]
    return message


async def assert_push_creates(client: Client, name: str) -> None:
    pushed = await push_image(client, name, "v1")
    repo = await get_repository(client, name)
    assert repo["is_public"] is False
    assert repo["is_immutable"] is False
    assert repo["image_count"] == 1
    assert repo["time_last_pushed"] is not None
    got = await client.get(f"/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status == 200
    assert got.headers["Docker-Content-Digest"] == pushed.digest


@pytest.mark.parametrize("registry_default", BOOLS, ids=lambda v: f"registry-{_id(v)}")
@pytest.mark.parametrize("compartments", BOOLS, ids=lambda v: f"create-compartments-{_id(v)}")
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda v: f"compartment-{_id(v)}")
async def test_existing_compartment(
    client: Client, registry_default: bool, compartments: bool, setting: bool | None
) -> None:
    await set_registry_config(client, repositories=registry_default, compartments=compartments)
    await compartment(client, "acme", is_repository_created_on_first_push=setting)
    allowed = setting if setting is not None else registry_default
    if allowed:
        await assert_push_creates(client, "acme/llm")
        await assert_push_creates(client, "acme/team/deep/vision")
        repo = await get_repository(client, "acme/team/deep/vision")
        assert (repo["compartment_id"], repo["display_name"]) == ("acme", "team/deep/vision")
        assert (await call(client, "GET", "/api/v1/compartments/acme", 200))["repository_count"] == 2
        return
    message = await assert_push_refused(client, "acme/llm")
    assert "modelyard repo create acme/llm" in message
    assert "modelyard compartment update acme --create-on-first-push" in message
    # Either piece of advice works.
    await repository(client, "acme", "llm")
    await assert_push_creates(client, "acme/llm")
    await assert_push_refused(client, "acme/other")
    await call(
        client,
        "PUT",
        "/api/v1/compartments/acme/configuration",
        200,
        json={"is_repository_created_on_first_push": True},
    )
    await assert_push_creates(client, "acme/other")


@pytest.mark.parametrize("registry_default", BOOLS, ids=lambda v: f"registry-{_id(v)}")
@pytest.mark.parametrize("compartments", BOOLS, ids=lambda v: f"create-compartments-{_id(v)}")
async def test_missing_compartment(client: Client, registry_default: bool, compartments: bool) -> None:
    await set_registry_config(client, repositories=registry_default, compartments=compartments)
    if registry_default and compartments:
        await assert_push_creates(client, "acme/llm")
        created = await call(client, "GET", "/api/v1/compartments/acme", 200)
        assert created["repository_count"] == 1
        config = await call(client, "GET", "/api/v1/compartments/acme/configuration", 200)
        assert config["is_repository_created_on_first_push"] is None  # inherits from then on
        return
    message = await assert_push_refused(client, "acme/llm")
    await error(client, "GET", "/api/v1/compartments/acme", 404, "NOT_FOUND")
    assert "modelyard compartment create acme" in message
    if not compartments:
        assert "modelyard config set --create-compartment-on-first-push" in message
    else:
        assert "modelyard config set --create-on-first-push" in message
    # The advice works: create the compartment (allowing first pushes), then push.
    await compartment(client, "acme", is_repository_created_on_first_push=True)
    await assert_push_creates(client, "acme/llm")


@pytest.mark.parametrize("registry_default", BOOLS, ids=lambda v: f"registry-{_id(v)}")
@pytest.mark.parametrize("compartments", BOOLS, ids=lambda v: f"create-compartments-{_id(v)}")
async def test_root_compartment(client: Client, registry_default: bool, compartments: bool) -> None:
    await set_registry_config(client, repositories=registry_default, compartments=compartments)
    # A compartment's setting never governs the root: one that allows pushes changes nothing.
    await compartment(client, "solo", is_repository_created_on_first_push=not registry_default)
    if registry_default:
        await assert_push_creates(client, "solo")
        repo = await get_repository(client, "solo")
        assert repo["compartment_id"] is None
        assert (await call(client, "GET", "/api/v1/compartments/solo", 200))["repository_count"] == 0
        return
    message = await assert_push_refused(client, "solo")
    assert "modelyard repo create solo" in message
    assert "modelyard config set --create-on-first-push" in message
    await repository(client, None, "solo")
    await assert_push_creates(client, "solo")


async def test_an_explicitly_created_repository_takes_pushes_whatever_the_settings(client: Client) -> None:
    await compartment(client, "acme", is_repository_created_on_first_push=False)
    await repository(client, "acme", "llm", is_public=True, is_immutable=True)
    await set_registry_config(client, repositories=False, compartments=False)
    await push_image(client, "acme/llm", "v1")
    repo = await get_repository(client, "acme/llm")
    assert repo["is_public"] is True and repo["is_immutable"] is True  # the push kept the settings
    assert repo["image_count"] == 1


async def test_reads_never_create_a_repository(client: Client) -> None:
    for path in ("/v2/acme/llm/manifests/v1", f"/v2/acme/llm/blobs/{sha256(b'x')}", "/v2/acme/llm/tags/list"):
        response = await client.get(path)
        assert response.status == 404, path
    await client.get(f"/v2/acme/llm/referrers/{sha256(b'x')}")
    await client.head("/v2/acme/llm/manifests/v1")
    await error(client, "GET", "/api/v1/repositories/acme/llm", 404, "NOT_FOUND")
    await error(client, "GET", "/api/v1/compartments/acme", 404, "NOT_FOUND")


async def test_a_refused_push_leaves_no_trace_when_it_is_allowed_later(client: Client) -> None:
    await set_registry_config(client, repositories=False, compartments=False)
    await assert_push_refused(client, "acme/llm")
    await set_registry_config(client, repositories=True, compartments=True)
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    await push_blob(client, "acme/llm", config)
    await push_blob(client, "acme/llm", b"layer")
    body = image_manifest(config, [b"layer"])
    put = await client.put("/v2/acme/llm/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert put.status == 201
    versions = await call(client, "GET", "/api/v1/repositories/acme/llm/-/versions", 200)
    assert [v["tag"] for v in versions["items"]] == ["v1"]


async def test_a_push_to_an_invalid_name_creates_nothing(client: Client) -> None:
    """A trailing newline (%0A) is no part of the grammar, though Python's ``$`` matches before one."""
    for raw_path in ("/v2/acme/llm%0A/blobs/uploads/", "/v2/solo%0A/blobs/uploads/", "/v2/acme%0A/llm/blobs/uploads/"):
        response = await raw_request(client, "POST", raw_path)
        assert response.status in (400, 404), raw_path
        assert (await response.json())["errors"][0]["code"] in ("NAME_INVALID", "UNSUPPORTED")
    assert (await call(client, "GET", "/api/v1/repositories", 200))["items"] == []
    assert (await call(client, "GET", "/api/v1/compartments", 200))["items"] == []

    pushed = await push_image(client, "acme/llm", "v1")
    response = await raw_request(
        client, "PUT", "/v2/acme/llm/manifests/v2%0A", data=pushed.body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status in (400, 404)
    assert (await response.json())["errors"][0]["code"] in ("TAG_INVALID", "UNSUPPORTED")
    versions = await call(client, "GET", "/api/v1/repositories/acme/llm/-/versions", 200)
    assert [v["tag"] for v in versions["items"]] == ["v1"]
