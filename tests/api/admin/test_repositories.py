"""``/api/v1/repositories``: fields, refusals, filters and pages, statistics and versions from real
``/v2`` pushes, deletion, and immutable tags as the ``/v2`` API enforces them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.admin.support import (
    Client,
    b64,
    call,
    compartment,
    error,
    get_repository,
    invalid_fields,
    parse_time,
    repository,
    walk,
)
from tests.conftest import ClientFactory
from tests.helpers import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    error_code,
    image_manifest,
    push_blob,
    push_image,
    sha256,
)

BASE = "/api/v1/repositories"
READ_ONLY = {
    "id",
    "name",
    "url",
    "image_count",
    "layer_count",
    "layers_size_in_bytes",
    "time_created",
    "time_last_pushed",
    "created_by",
    "lifecycle_state",
}
WRITABLE = {
    "compartment_id",
    "display_name",
    "description",
    "is_public",
    "is_immutable",
    "immutable_tag_patterns",
    "mutable_tag_exclusions",
    "readme",
    "labels",
    "protected_aliases",
    "promotion_gates",
}


def host_of(client: Client) -> str:
    url = client.make_url("/")
    return f"{url.host}:{url.port}"


# -- create, show, update: every field ---------------------------------------------------------


async def test_create_round_trips_every_field(client: Client) -> None:
    await compartment(client, "acme")
    readme = "# LLM\n\nWeights of the *big* model. ✓\n"
    spec = {
        "compartment_id": "acme",
        "display_name": "team/llm",
        "description": "the language model",
        "is_public": True,
        "is_immutable": True,
        "immutable_tag_patterns": ["v*", "release-[0-9]*"],
        "mutable_tag_exclusions": ["latest", "nightly?"],
        "readme": {"content": b64(readme), "format": "TEXT_PLAIN"},
        "labels": {"team": "nlp", "cost-centre.id": "42", "empty": ""},
        "protected_aliases": [{"alias": "prod", "roles": ["repoAdmin"], "members": ["user:alice"]}],
        "promotion_gates": [
            {
                "alias": "prod",
                "required_referrer_types": ["application/vnd.modelyard.eval.v1+json"],
                "require_alias_first": "staging",
            }
        ],
    }
    before = datetime.now(UTC)
    created = await call(client, "POST", BASE, 201, json=spec)
    after = datetime.now(UTC)
    assert set(created) == READ_ONLY | WRITABLE
    for field, value in spec.items():
        assert created[field] == value, field
    assert base64.b64decode(created["readme"]["content"]).decode() == readme
    assert isinstance(created["id"], str) and created["id"]
    assert created["name"] == "acme/team/llm"
    assert created["url"] == f"{host_of(client)}/acme/team/llm"
    assert created["image_count"] == 0
    assert created["layer_count"] == 0
    assert created["layers_size_in_bytes"] == 0
    assert before <= parse_time(created["time_created"]) <= after
    assert created["time_last_pushed"] is None
    assert created["created_by"] is None
    assert created["lifecycle_state"] == "AVAILABLE"

    assert await get_repository(client, "acme/team/llm") == created
    listed = await call(client, "GET", BASE, 200)
    assert listed["items"] == [created]


async def test_defaults(client: Client) -> None:
    await compartment(client, "acme")
    created = await repository(client, "acme", "llm")
    assert created["description"] == ""
    assert created["is_public"] is False
    assert created["is_immutable"] is False
    assert created["immutable_tag_patterns"] == []
    assert created["mutable_tag_exclusions"] == []
    assert created["readme"] == {"content": "", "format": "TEXT_MARKDOWN"}
    assert created["labels"] == {}


async def test_root_compartment_repository(client: Client) -> None:
    created = await repository(client, None, "solo")
    assert created["name"] == "solo"
    assert created["compartment_id"] is None
    assert created["display_name"] == "solo"
    assert created["url"] == f"{host_of(client)}/solo"
    assert await get_repository(client, "solo") == created
    # No compartment row appears for the root compartment.
    assert (await call(client, "GET", "/api/v1/compartments", 200))["items"] == []


async def test_url_uses_the_public_host_setting(make_client: ClientFactory) -> None:
    client = await make_client(public_host="models.example.com:8443")
    await compartment(client, "acme")
    created = await repository(client, "acme", "llm")
    assert created["url"] == "models.example.com:8443/acme/llm"


async def test_update_changes_only_the_given_fields(client: Client) -> None:
    await compartment(client, "acme")
    created = await repository(
        client, "acme", "llm", description="d", labels={"a": "1"}, readme={"content": b64("hello")}
    )
    changes: list[dict[str, Any]] = [
        {"description": "new words"},
        {"is_public": True},
        {"is_immutable": True},
        {"immutable_tag_patterns": ["v*"]},
        {"mutable_tag_exclusions": ["latest"]},
        {"readme": {"content": b64("# Title\n"), "format": "TEXT_MARKDOWN"}},
        {"labels": {"team": "vision"}},
    ]
    expected = dict(created)
    for change in changes:
        updated = await call(client, "PATCH", f"{BASE}/acme/llm", 200, json=change)
        expected.update(change)
        assert updated == expected, change
    assert await get_repository(client, "acme/llm") == expected
    # Clearing lists and labels, and an empty README.
    cleared = await call(
        client,
        "PATCH",
        f"{BASE}/acme/llm",
        200,
        json={"immutable_tag_patterns": [], "labels": {}, "readme": {"content": "", "format": "TEXT_PLAIN"}},
    )
    assert cleared["immutable_tag_patterns"] == []
    assert cleared["labels"] == {}
    assert cleared["readme"] == {"content": "", "format": "TEXT_PLAIN"}
    assert cleared["description"] == "new words"
    assert await call(client, "PATCH", f"{BASE}/acme/llm", 200, json={}) == cleared


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"display_name": "LLM"}, "display_name"),
        ({"display_name": "Team/llm"}, "display_name"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "llm/"}, "display_name"),
        ({"display_name": "../llm"}, "display_name"),
        ({"display_name": "a" * 256}, "display_name"),
        ({"display_name": "llm\n"}, "display_name"),
        ({"compartment_id": "acme\n"}, "compartment_id"),
        ({"display_name": 5}, "display_name"),
        ({"readme": {"content": "not base64!"}}, "readme.content"),
        ({"readme": {"content": "aGVsbG8"}}, "readme.content"),
        ({"readme": {"content": base64.b64encode(b"\xff\xfe\x00").decode()}}, "readme.content"),
        ({"readme": {"content": b64("x" * (1024 * 1024 + 1))}}, "readme.content"),
        ({"readme": {"content": "", "format": "TEXT_HTML"}}, "readme.format"),
        ({"labels": {"Bad Key": "x"}}, "labels"),
        ({"labels": {"-dash": "x"}}, "labels"),
        ({"labels": {"k": "v" * 257}}, "labels"),
        ({"labels": ["team=nlp"]}, "labels"),
        ({"is_public": "perhaps"}, "is_public"),
        ({"is_immutable": 2}, "is_immutable"),
        ({"immutable_tag_patterns": ["v 1"]}, "immutable_tag_patterns"),
        ({"immutable_tag_patterns": "v*"}, "immutable_tag_patterns"),
        ({"mutable_tag_exclusions": [""]}, "mutable_tag_exclusions"),
        ({"description": "x" * 4097}, "description"),
        ({"image_count": 3}, "image_count"),
        ({"compartment_id": "acme/team"}, "compartment_id"),
        ({"compartment_id": "Acme"}, "compartment_id"),
    ],
)
async def test_create_validation_is_422_naming_the_field(client: Client, fields: dict[str, Any], field: str) -> None:
    await compartment(client, "acme")
    spec = {"compartment_id": "acme", "display_name": "llm", **fields}
    named = await invalid_fields(client, "POST", BASE, json=spec)
    assert any(name == field or name.startswith(field + ".") for name in named), named
    assert (await call(client, "GET", BASE, 200))["items"] == []


async def test_uppercase_display_name_message_suggests_the_lowercase_name(client: Client) -> None:
    await compartment(client, "acme")
    refused = await error(
        client, "POST", BASE, 422, "VALIDATION_FAILED", json={"compartment_id": "acme", "display_name": "My-LLM"}
    )
    assert refused["detail"][0]["field"] == "display_name"
    assert "'my-llm'" in refused["detail"][0]["message"]


async def test_root_compartment_display_name_with_slash_is_422(client: Client) -> None:
    await compartment(client, "acme")
    refused = await error(
        client, "POST", BASE, 422, "VALIDATION_FAILED", json={"compartment_id": None, "display_name": "acme/llm"}
    )
    assert [p["field"] for p in refused["detail"]] == ["display_name"]
    assert "compartment_id" in refused["detail"][0]["message"]
    await error(client, "GET", f"{BASE}/acme/llm", 404, "NOT_FOUND")


async def test_missing_display_name_is_422(client: Client) -> None:
    assert "display_name" in await invalid_fields(client, "POST", BASE, json={"compartment_id": None})


async def test_unknown_compartment_is_404(client: Client) -> None:
    refused = await error(
        client, "POST", BASE, 404, "NOT_FOUND", json={"compartment_id": "ghost", "display_name": "llm"}
    )
    assert "ghost" in refused["message"]
    await error(client, "GET", "/api/v1/compartments/ghost", 404, "NOT_FOUND")


@pytest.mark.parametrize("compartment_id", ["acme", None])
async def test_duplicate_is_409(client: Client, compartment_id: str | None) -> None:
    await compartment(client, "acme")
    first = await repository(client, compartment_id, "llm", description="first")
    refused = await error(
        client,
        "POST",
        BASE,
        409,
        "CONFLICT",
        json={"compartment_id": compartment_id, "display_name": "llm", "description": "second"},
    )
    assert first["name"] in refused["message"]
    assert (await get_repository(client, first["name"]))["description"] == "first"


async def test_repository_created_by_a_push_is_a_duplicate_too(client: Client) -> None:
    await push_image(client, "acme/llm", "v1")
    await error(client, "POST", BASE, 409, "CONFLICT", json={"compartment_id": "acme", "display_name": "llm"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"readme": {"content": "%%%"}}, "readme.content"),
        ({"labels": {"UPPER": "x"}}, "labels"),
        ({"is_public": "perhaps"}, "is_public"),
        ({"display_name": "renamed"}, "display_name"),
        ({"compartment_id": "other"}, "compartment_id"),
        ({"layers_size_in_bytes": 0}, "layers_size_in_bytes"),
        ({"immutable_tag_patterns": ["v/1"]}, "immutable_tag_patterns"),
    ],
)
async def test_update_validation_is_422(client: Client, change: dict[str, Any], field: str) -> None:
    await compartment(client, "acme")
    created = await repository(client, "acme", "llm")
    named = await invalid_fields(client, "PATCH", f"{BASE}/acme/llm", json=change)
    assert any(name == field or name.startswith(field + ".") for name in named), named
    assert await get_repository(client, "acme/llm") == created


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"description": "x"}),
        ("DELETE", "", None),
        ("GET", "/-/versions", None),
    ],
)
async def test_unknown_repository_is_404(client: Client, method: str, suffix: str, body: Any) -> None:
    await compartment(client, "acme")
    refused = await error(client, method, f"{BASE}/acme/ghost{suffix}", 404, "NOT_FOUND", json=body)
    assert "acme/ghost" in refused["message"]


@pytest.mark.parametrize("path", [BASE, f"{BASE}/acme/llm/-/versions"])
@pytest.mark.parametrize("limit", ["0", "1001", "x"])
async def test_limit_out_of_range_is_422(client: Client, path: str, limit: str) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm")
    assert await invalid_fields(client, "GET", path, params={"limit": limit}) == ["limit"]


# -- list: filters and pages -------------------------------------------------------------------


async def _population(client: Client) -> None:
    await compartment(client, "acme")
    await compartment(client, "beta")
    await repository(client, "acme", "llm", is_public=True)
    await repository(client, "acme", "llm-extra")
    await repository(client, "acme", "a_b")
    await repository(client, "acme", "axb", is_public=True)
    await repository(client, "acme", "vision/detector")
    await repository(client, "beta", "llm", is_public=True)
    await repository(client, None, "solo")


async def names(client: Client, **params: str) -> list[str]:
    body = await call(client, "GET", BASE, 200, params=params)
    assert body["next_page"] is None
    return [r["name"] for r in body["items"]]


async def test_filters(client: Client) -> None:
    await _population(client)
    every = ["acme/a_b", "acme/axb", "acme/llm", "acme/llm-extra", "acme/vision/detector", "beta/llm", "solo"]
    assert await names(client) == every
    assert await names(client, compartment_id="acme") == every[:5]
    assert await names(client, compartment_id="beta") == ["beta/llm"]
    assert await names(client, compartment_id="ghost") == []
    assert await names(client, is_public="true") == ["acme/axb", "acme/llm", "beta/llm"]
    assert await names(client, is_public="1") == ["acme/axb", "acme/llm", "beta/llm"]
    assert await names(client, is_public="false") == ["acme/a_b", "acme/llm-extra", "acme/vision/detector", "solo"]
    assert await names(client, name_prefix="acme/llm") == ["acme/llm", "acme/llm-extra"]
    assert await names(client, name_prefix="acme/a_") == ["acme/a_b"]  # '_' is not a wildcard
    assert await names(client, name_prefix="%") == []
    assert await names(client, name_prefix="s") == ["solo"]
    assert await names(client, compartment_id="acme", is_public="true") == ["acme/axb", "acme/llm"]
    assert await names(client, compartment_id="acme", is_public="false", name_prefix="acme/v") == [
        "acme/vision/detector"
    ]


@pytest.mark.parametrize("value", ["perhaps", "", "yes"])
async def test_bad_boolean_filter_is_422(client: Client, value: str) -> None:
    assert await invalid_fields(client, "GET", BASE, params={"is_public": value}) == ["is_public"]


async def test_pages_with_and_without_filters(client: Client) -> None:
    await _population(client)
    items, pages = await walk(client, BASE, 2)
    assert [r["name"] for r in items] == await names(client)
    assert pages == 4
    items, pages = await walk(client, BASE, 1, compartment_id="acme", is_public="false")
    assert [r["name"] for r in items] == ["acme/a_b", "acme/llm-extra", "acme/vision/detector"]
    assert pages == 3
    first = await call(client, "GET", BASE, 200, params={"limit": "2"})
    assert first["next_page"] == "acme/axb"


# -- statistics and versions from real pushes ---------------------------------------------------


async def test_statistics_match_what_was_pushed(client: Client) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm")
    shared = b"shared layer " * 100
    before = datetime.now(UTC)
    first = await push_image(client, "acme/llm", "v1", layers=[b"only in one" * 7, shared])
    middle = datetime.now(UTC)
    repo = await get_repository(client, "acme/llm")
    blobs = {sha256(b): len(b) for b in [first.config, *first.layers]}
    assert repo["image_count"] == 1
    assert repo["layer_count"] == len(blobs)
    assert repo["layers_size_in_bytes"] == sum(blobs.values())
    first_push = parse_time(repo["time_last_pushed"])
    assert before <= first_push <= middle

    second = await push_image(client, "acme/llm", "v2", layers=[shared, b"third" * 1000])
    await push_image(client, "acme/llm", "also-v2", layers=second.layers)  # same manifest, new tag
    after = datetime.now(UTC)
    blobs.update({sha256(b): len(b) for b in [second.config, *second.layers]})
    repo = await get_repository(client, "acme/llm")
    assert repo["image_count"] == 2
    assert repo["layer_count"] == len(blobs) == 4  # one config, three layers (one shared)
    assert repo["layers_size_in_bytes"] == sum(blobs.values())
    assert first_push <= parse_time(repo["time_last_pushed"]) <= after

    listed = await call(client, "GET", BASE, 200)
    assert listed["items"] == [repo]

    # Another repository's pushes do not count here.
    await push_image(client, "acme/other", "v1", layers=[b"elsewhere" * 50])
    assert (await get_repository(client, "acme/llm"))["layers_size_in_bytes"] == sum(blobs.values())


async def test_statistics_of_a_repository_created_by_a_push(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1", layers=[b"a" * 300, b"b" * 500])
    repo = await get_repository(client, "acme/llm")
    assert repo["image_count"] == 1
    assert repo["layer_count"] == 3
    assert repo["layers_size_in_bytes"] == 800 + len(pushed.config)
    assert repo["time_last_pushed"] is not None
    assert repo["compartment_id"] == "acme"
    assert repo["display_name"] == "llm"


async def test_versions_show_each_tag_with_its_manifest(client: Client) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm", immutable_tag_patterns=["v*"], mutable_tag_exclusions=["v*-rc"])
    before = datetime.now(UTC)
    notes = {"org.opencontainers.image.title": "llm", "org.example.eval": "0.93"}
    v1 = await push_image(client, "acme/llm", "v1", annotations=notes)
    await push_image(client, "acme/llm", "latest", layers=v1.layers, annotations=notes)
    rc = await push_image(client, "acme/llm", "v2-rc", media_type=DOCKER_MANIFEST)
    model = await push_image(
        client, "acme/llm", "model", artifact_type="application/vnd.cncf.model.manifest.v1+json", config=b"{}"
    )
    after = datetime.now(UTC)

    body = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200)
    assert body["next_page"] is None
    versions = {v["tag"]: v for v in body["items"]}
    assert [v["tag"] for v in body["items"]] == ["latest", "model", "v1", "v2-rc"]
    for version in body["items"]:
        assert set(version) == {
            "tag",
            "digest",
            "media_type",
            "artifact_type",
            "size",
            "annotations",
            "time_created",
            "time_tagged",
            "immutable",
            "model",  # what the registry understood of it (tests/api/models/)
        }
        assert before <= parse_time(version["time_created"]) <= parse_time(version["time_tagged"]) <= after

    assert versions["v1"]["digest"] == v1.digest
    assert versions["v1"]["media_type"] == OCI_MANIFEST
    assert versions["v1"]["size"] == len(v1.body)
    assert versions["v1"]["annotations"] == notes
    # A plain image has no artifact type of its own (its config type would only say "image").
    assert versions["v1"]["artifact_type"] is None
    assert versions["v1"]["immutable"] is True
    assert versions["latest"]["digest"] == v1.digest
    assert versions["latest"]["immutable"] is False
    assert versions["v2-rc"]["digest"] == rc.digest
    assert versions["v2-rc"]["media_type"] == DOCKER_MANIFEST
    assert versions["v2-rc"]["size"] == len(rc.body)
    assert versions["v2-rc"]["annotations"] == {}
    assert versions["v2-rc"]["immutable"] is False
    assert versions["model"]["artifact_type"] == "application/vnd.cncf.model.manifest.v1+json"
    assert versions["model"]["digest"] == model.digest
    assert versions["model"]["immutable"] is False

    # A moved mutable tag shows its new manifest; an untagged manifest is no version.
    moved = await push_image(client, "acme/llm", "latest", layers=[b"newer"])
    untagged = image_manifest(moved.config, moved.layers, annotations={"x": "y"})
    put = await client.put(
        f"/v2/acme/llm/manifests/{sha256(untagged)}", data=untagged, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status == 201
    body = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200)
    assert {v["tag"]: v["digest"] for v in body["items"]} == {
        "latest": moved.digest,
        "model": model.digest,
        "v1": v1.digest,
        "v2-rc": rc.digest,
    }


async def test_versions_immutable_flag_follows_is_immutable(client: Client) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm", is_immutable=True, mutable_tag_exclusions=["latest"])
    await push_image(client, "acme/llm", "anything")
    await push_image(client, "acme/llm", "latest")
    body = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200)
    assert {v["tag"]: v["immutable"] for v in body["items"]} == {"anything": True, "latest": False}
    await call(client, "PATCH", f"{BASE}/acme/llm", 200, json={"is_immutable": False})
    body = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200)
    assert {v["tag"]: v["immutable"] for v in body["items"]} == {"anything": False, "latest": False}


async def test_versions_pages(client: Client) -> None:
    tags = ["a1", "b2", "c3", "d4", "e5"]
    for tag in reversed(tags):
        await push_image(client, "acme/llm", tag)
    items, pages = await walk(client, f"{BASE}/acme/llm/-/versions", 2)
    assert [v["tag"] for v in items] == tags
    assert pages == 3
    first = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200, params={"limit": "2"})
    assert first["next_page"] == "b2"
    rest = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200, params={"page": "c3"})
    assert [v["tag"] for v in rest["items"]] == ["d4", "e5"]


async def test_versions_of_an_empty_repository(client: Client) -> None:
    await repository(client, None, "solo")
    assert await call(client, "GET", f"{BASE}/solo/-/versions", 200) == {"items": [], "next_page": None}


# -- delete --------------------------------------------------------------------------------------


async def test_delete_removes_tags_and_manifests_but_keeps_blob_bytes(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "registry"
    client = await make_client(data_dir=data_dir)
    await compartment(client, "acme")
    await repository(client, "acme", "llm", is_immutable=True)
    pushed = await push_image(client, "acme/llm", "v1", layers=[b"weights" * 1000])
    untagged = await push_image(client, "acme/llm", "v2", layers=[b"more weights" * 100])
    blob_files = [
        data_dir / "blobs" / "sha256" / sha256(b)[7:9] / sha256(b)[7:] for b in [pushed.config, *pushed.layers]
    ]
    for path in blob_files:
        assert path.is_file(), path

    await call(client, "DELETE", f"{BASE}/acme/llm", 204)

    for reference in ("v1", pushed.digest, untagged.digest):
        response = await client.get(f"/v2/acme/llm/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert response.status == 404, reference
        assert await error_code(response) in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    tags = await client.get("/v2/acme/llm/tags/list")
    assert tags.status == 404
    assert await error_code(tags) == "NAME_UNKNOWN"
    await error(client, "GET", f"{BASE}/acme/llm", 404, "NOT_FOUND")
    await error(client, "GET", f"{BASE}/acme/llm/-/versions", 404, "NOT_FOUND")
    assert (await call(client, "GET", "/api/v1/compartments/acme", 200))["repository_count"] == 0
    catalog = await (await client.get("/v2/_catalog")).json()
    assert "acme/llm" not in catalog["repositories"]

    # In the database nothing of the repository is left but the shared blob records.
    with contextlib.closing(sqlite3.connect(data_dir / "modelyard.db")) as db:
        for table in ("tags", "manifests", "manifest_references", "repository_blobs", "uploads", "repositories"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        stored = {row[0] for row in db.execute("SELECT digest FROM blobs")}
    assert {sha256(b) for b in [pushed.config, *pushed.layers]} <= stored

    # The bytes stay on disk (garbage collection's job), intact.
    for path, data in zip(blob_files, [pushed.config, *pushed.layers], strict=True):
        assert path.read_bytes() == data

    # A new repository of the same name starts empty: no tag, manifest or immutability comes back.
    fresh = await repository(client, "acme", "llm")
    assert fresh["image_count"] == 0 and fresh["layer_count"] == 0 and fresh["time_last_pushed"] is None
    assert fresh["is_immutable"] is False
    assert (await client.get(f"/v2/acme/llm/manifests/{pushed.digest}")).status == 404
    moved = await push_image(client, "acme/llm", "v1", layers=[b"different"])
    assert moved.digest != pushed.digest


async def test_delete_leaves_other_repositories_alone(client: Client) -> None:
    layers = [b"shared weights" * 100]
    await push_image(client, "acme/llm", "v1", layers=layers)
    kept = await push_image(client, "acme/llm2", "v1", layers=layers)
    await call(client, "DELETE", f"{BASE}/acme/llm", 204)
    response = await client.get("/v2/acme/llm2/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status == 200
    assert await response.read() == kept.body
    blob = await client.get(f"/v2/acme/llm2/blobs/{sha256(layers[0])}")
    assert blob.status == 200
    assert await blob.read() == layers[0]
    assert (await get_repository(client, "acme/llm2"))["image_count"] == 1


# -- immutable tags, through /v2 -------------------------------------------------------------------


async def put_image(client: Client, repo: str, reference: str, layer: bytes) -> tuple[Any, bytes]:
    """Push the blobs of a one-layer image and PUT its manifest; returns (response, manifest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    for blob in (config, layer):
        await push_blob(client, repo, blob)
    body = image_manifest(config, [layer])
    response = await client.put(f"/v2/{repo}/manifests/{reference}", data=body, headers={"Content-Type": OCI_MANIFEST})
    return response, body


async def current_digest(client: Client, repo: str, tag: str) -> str:
    response = await client.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status == 200, tag
    return response.headers["Docker-Content-Digest"]


async def assert_immutable_refusal(response: Any, repo: str, tag: str, digest: str) -> None:
    assert response.status == 409, await response.text()
    payload = await response.json()
    first = payload["errors"][0]
    assert first["code"] == "DENIED"
    assert first["detail"]["reason"] == "TAG_IMMUTABLE"
    assert first["detail"]["tag"] == tag
    assert first["detail"]["digest"] == digest
    assert first["detail"]["repository"] == repo
    assert tag in first["message"] and digest in first["message"]


async def immutable_repo(client: Client, **settings: Any) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm", **settings)


async def test_an_immutable_tag_never_moves(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    first = await push_image(client, "acme/llm", "v1", layers=[b"first"])
    response, _ = await put_image(client, "acme/llm", "v1", b"second")
    await assert_immutable_refusal(response, "acme/llm", "v1", first.digest)
    assert await current_digest(client, "acme/llm", "v1") == first.digest
    got = await client.get("/v2/acme/llm/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert await got.read() == first.body


async def test_re_pushing_the_same_digest_is_accepted(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    first = await push_image(client, "acme/llm", "v1", layers=[b"first"])
    again = await push_image(client, "acme/llm", "v1", layers=[b"first"])
    assert again.digest == first.digest
    by_digest = await client.put(
        f"/v2/acme/llm/manifests/{first.digest}", data=first.body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert by_digest.status == 201
    assert await current_digest(client, "acme/llm", "v1") == first.digest


async def test_an_immutable_tag_and_its_manifest_cannot_be_deleted(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    first = await push_image(client, "acme/llm", "v1")
    tag_delete = await client.delete("/v2/acme/llm/manifests/v1")
    await assert_immutable_refusal(tag_delete, "acme/llm", "v1", first.digest)
    digest_delete = await client.delete(f"/v2/acme/llm/manifests/{first.digest}")
    await assert_immutable_refusal(digest_delete, "acme/llm", "v1", first.digest)
    assert await current_digest(client, "acme/llm", "v1") == first.digest
    assert (await client.get(f"/v2/acme/llm/manifests/{first.digest}")).status == 200


async def test_a_digest_only_push_is_always_allowed(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    tagged = await push_image(client, "acme/llm", "v1", layers=[b"first"])
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    body = image_manifest(config, [b"by digest only"])
    await push_blob(client, "acme/llm", b"by digest only")
    response = await client.put(
        f"/v2/acme/llm/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert (await client.get(f"/v2/acme/llm/manifests/{sha256(body)}")).status == 200
    assert await current_digest(client, "acme/llm", "v1") == tagged.digest
    # Nothing immutable names it, so it can go again.
    assert (await client.delete(f"/v2/acme/llm/manifests/{sha256(body)}")).status == 202


async def test_patterns_make_versions_immutable_and_exclusions_keep_latest_mutable(client: Client) -> None:
    await immutable_repo(client, immutable_tag_patterns=["v*"], mutable_tag_exclusions=["latest"])
    v1 = await push_image(client, "acme/llm", "v1.0", layers=[b"one"])
    latest = await push_image(client, "acme/llm", "latest", layers=[b"one"])
    dev = await push_image(client, "acme/llm", "dev", layers=[b"dev one"])
    assert latest.digest == v1.digest

    refused, _ = await put_image(client, "acme/llm", "v1.0", b"two")
    await assert_immutable_refusal(refused, "acme/llm", "v1.0", v1.digest)
    moved_latest, _ = await put_image(client, "acme/llm", "latest", b"two")
    assert moved_latest.status == 201
    moved_dev, _ = await put_image(client, "acme/llm", "dev", b"dev two")
    assert moved_dev.status == 201
    assert await current_digest(client, "acme/llm", "v1.0") == v1.digest
    assert await current_digest(client, "acme/llm", "latest") != v1.digest
    assert await current_digest(client, "acme/llm", "dev") != dev.digest

    assert (await client.delete("/v2/acme/llm/manifests/latest")).status == 202
    assert (await client.delete("/v2/acme/llm/manifests/dev")).status == 202
    await assert_immutable_refusal(await client.delete("/v2/acme/llm/manifests/v1.0"), "acme/llm", "v1.0", v1.digest)


async def test_exclusions_carve_latest_out_of_an_immutable_repository(client: Client) -> None:
    await immutable_repo(client, is_immutable=True, mutable_tag_exclusions=["latest"])
    await push_image(client, "acme/llm", "latest", layers=[b"one"])
    release = await push_image(client, "acme/llm", "release", layers=[b"one"])
    moved, _ = await put_image(client, "acme/llm", "latest", b"two")
    assert moved.status == 201
    refused, _ = await put_image(client, "acme/llm", "release", b"two")
    await assert_immutable_refusal(refused, "acme/llm", "release", release.digest)


async def test_a_manifest_named_by_an_immutable_tag_cannot_be_deleted_through_a_mutable_one(client: Client) -> None:
    await immutable_repo(client, immutable_tag_patterns=["v*"], mutable_tag_exclusions=["latest"])
    pushed = await push_image(client, "acme/llm", "latest", layers=[b"same"])
    assert (await push_image(client, "acme/llm", "v1", layers=[b"same"])).digest == pushed.digest
    response = await client.delete(f"/v2/acme/llm/manifests/{pushed.digest}")
    await assert_immutable_refusal(response, "acme/llm", "v1", pushed.digest)
    assert await current_digest(client, "acme/llm", "latest") == pushed.digest


async def test_turning_immutability_off_allows_moving_and_deleting_again(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    first = await push_image(client, "acme/llm", "v1", layers=[b"first"])
    refused, _ = await put_image(client, "acme/llm", "v1", b"second")
    assert refused.status == 409

    await call(client, "PATCH", f"{BASE}/acme/llm", 200, json={"is_immutable": False})
    moved, second = await put_image(client, "acme/llm", "v1", b"second")
    assert moved.status == 201
    assert await current_digest(client, "acme/llm", "v1") == sha256(second)
    assert (await client.delete(f"/v2/acme/llm/manifests/{first.digest}")).status == 202

    # And on again: the tag is pinned where it is now.
    await call(client, "PATCH", f"{BASE}/acme/llm", 200, json={"is_immutable": True})
    refused, _ = await put_image(client, "acme/llm", "v1", b"third")
    await assert_immutable_refusal(refused, "acme/llm", "v1", sha256(second))


async def test_a_new_immutable_tag_may_be_pushed_once(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    await push_image(client, "acme/llm", "v1", layers=[b"first"])
    for tag in ("v2", "v3"):
        response, _ = await put_image(client, "acme/llm", tag, b"content of " + tag.encode())
        assert response.status == 201
    body = await call(client, "GET", f"{BASE}/acme/llm/-/versions", 200)
    assert [(v["tag"], v["immutable"]) for v in body["items"]] == [("v1", True), ("v2", True), ("v3", True)]


async def test_racing_pushes_of_one_new_immutable_tag_leave_exactly_one_winner(client: Client) -> None:
    await immutable_repo(client, is_immutable=True)
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    await push_blob(client, "acme/llm", config)
    bodies = []
    for n in range(8):
        layer = f"contender {n}".encode()
        await push_blob(client, "acme/llm", layer)
        bodies.append(image_manifest(config, [layer]))

    async def put(body: bytes) -> tuple[int, Any]:
        response = await client.put("/v2/acme/llm/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
        return response.status, await response.json(content_type=None) if response.status != 201 else None

    results = await asyncio.gather(*(put(body) for body in bodies))
    winners = [sha256(body) for body, (status, _) in zip(bodies, results, strict=True) if status == 201]
    assert len(winners) == 1, results
    current = await current_digest(client, "acme/llm", "v1")
    assert current == winners[0]
    for status, payload in results:
        if status != 201:
            assert status == 409
            assert payload["errors"][0]["detail"] == {
                "reason": "TAG_IMMUTABLE",
                "repository": "acme/llm",
                "tag": "v1",
                "digest": current,
            }


async def test_racing_first_pushes_create_the_repository_once(client: Client) -> None:
    results = await asyncio.gather(*(client.post("/v2/fresh/llm/blobs/uploads/") for _ in range(8)))
    assert [r.status for r in results] == [202] * 8
    listed = await call(client, "GET", BASE, 200)
    assert [r["name"] for r in listed["items"]] == ["fresh/llm"]
    assert (await call(client, "GET", "/api/v1/compartments", 200))["items"][0]["repository_count"] == 1


async def test_created_by_names_the_caller_when_auth_is_on(make_client: ClientFactory) -> None:
    client = await make_client(auth_enabled=True, admin_password="correct horse battery")
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:correct horse battery").decode()}
    anonymous = await client.post("/api/v1/compartments", json={"name": "acme"})
    assert anonymous.status == 401
    await call(client, "POST", "/api/v1/compartments", 201, json={"name": "acme"}, headers=auth)
    created = await call(
        client, "POST", BASE, 201, json={"compartment_id": "acme", "display_name": "llm"}, headers=auth
    )
    assert created["created_by"] is not None and "admin" in created["created_by"]
    assert (await call(client, "GET", f"{BASE}/acme/llm", 200, headers=auth))["created_by"] == created["created_by"]
