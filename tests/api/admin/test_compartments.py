"""``/api/v1/compartments``: create, show, list with pages, update, configuration, delete, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.admin.support import (
    Client,
    call,
    compartment,
    error,
    invalid_fields,
    parse_time,
    repository,
    set_registry_config,
    walk,
)

BASE = "/api/v1/compartments"


async def test_create_round_trips_every_field(client: Client) -> None:
    before = datetime.now(UTC)
    created = await compartment(client, "acme", description="ACME's models", is_repository_created_on_first_push=False)
    after = datetime.now(UTC)
    assert set(created) == {"id", "name", "description", "repository_count", "time_created", "time_updated"}
    assert created["id"] == "acme"
    assert created["name"] == "acme"
    assert created["description"] == "ACME's models"
    assert created["repository_count"] == 0
    assert before <= parse_time(created["time_created"]) <= after
    assert parse_time(created["time_updated"]) == parse_time(created["time_created"])

    assert await call(client, "GET", f"{BASE}/acme", 200) == created
    config = await call(client, "GET", f"{BASE}/acme/configuration", 200)
    assert config == {
        "compartment_id": "acme",
        "is_repository_created_on_first_push": False,
        "effective_is_repository_created_on_first_push": False,
    }


async def test_defaults_inherit_the_registry_setting(client: Client) -> None:
    created = await compartment(client, "team-a.models_1")
    assert created["description"] == ""
    path = f"{BASE}/team-a.models_1/configuration"
    config = await call(client, "GET", path, 200)
    assert config["is_repository_created_on_first_push"] is None
    assert config["effective_is_repository_created_on_first_push"] is True
    await set_registry_config(client, repositories=False, compartments=True)
    config = await call(client, "GET", path, 200)
    assert config["is_repository_created_on_first_push"] is None
    assert config["effective_is_repository_created_on_first_push"] is False


@pytest.mark.parametrize("value", [True, False, None])
async def test_configuration_put_sets_overrides_and_inherits(client: Client, value: bool | None) -> None:
    await compartment(client, "acme", is_repository_created_on_first_push=not value if value is not None else True)
    await set_registry_config(client, repositories=False, compartments=False)
    path = f"{BASE}/acme/configuration"
    result = await call(client, "PUT", path, 200, json={"is_repository_created_on_first_push": value})
    expected = {
        "compartment_id": "acme",
        "is_repository_created_on_first_push": value,
        "effective_is_repository_created_on_first_push": bool(value),
    }
    assert result == expected
    assert await call(client, "GET", path, 200) == expected


async def test_configuration_put_with_empty_body_means_inherit(client: Client) -> None:
    await compartment(client, "acme", is_repository_created_on_first_push=False)
    result = await call(client, "PUT", f"{BASE}/acme/configuration", 200, json={})
    assert result["is_repository_created_on_first_push"] is None
    assert result["effective_is_repository_created_on_first_push"] is True


async def test_update_description_keeps_the_rest(client: Client) -> None:
    created = await compartment(client, "acme", description="old", is_repository_created_on_first_push=False)
    updated = await call(client, "PATCH", f"{BASE}/acme", 200, json={"description": "new"})
    assert updated["description"] == "new"
    assert updated["time_created"] == created["time_created"]
    assert parse_time(updated["time_updated"]) >= parse_time(created["time_updated"])
    assert await call(client, "GET", f"{BASE}/acme", 200) == updated
    config = await call(client, "GET", f"{BASE}/acme/configuration", 200)
    assert config["is_repository_created_on_first_push"] is False
    # An empty patch changes nothing.
    unchanged = await call(client, "PATCH", f"{BASE}/acme", 200, json={})
    assert unchanged["description"] == "new"


async def test_list_pages_through_every_compartment_in_name_order(client: Client) -> None:
    names = [f"c{n:02d}" for n in range(7)]
    for name in reversed(names):
        await compartment(client, name)
    everything = await call(client, "GET", BASE, 200)
    assert [c["name"] for c in everything["items"]] == names
    assert everything["next_page"] is None

    items, pages = await walk(client, BASE, 3)
    assert [c["name"] for c in items] == names
    assert pages == 3
    first = await call(client, "GET", BASE, 200, params={"limit": "3"})
    assert first["next_page"] == "c02"
    after = await call(client, "GET", BASE, 200, params={"limit": "3", "page": "c05"})
    assert [c["name"] for c in after["items"]] == ["c06"]
    assert after["next_page"] is None

    exact, pages = await walk(client, BASE, 7)
    assert [c["name"] for c in exact] == names
    assert pages == 1


async def test_list_empty(client: Client) -> None:
    assert await call(client, "GET", BASE, 200) == {"items": [], "next_page": None}


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "2.5", "\u00b2", "1e3", "", " 5", "9" * 5000])
async def test_limit_out_of_range_is_422_naming_limit(client: Client, limit: str) -> None:
    assert await invalid_fields(client, "GET", BASE, params={"limit": limit}) == ["limit"]


async def test_limit_bounds_are_accepted(client: Client) -> None:
    await compartment(client, "acme")
    for limit in ("1", "1000"):
        body = await call(client, "GET", BASE, 200, params={"limit": limit})
        assert [c["name"] for c in body["items"]] == ["acme"]


async def test_repository_count_follows_the_repositories(client: Client) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm")
    await repository(client, "acme", "team/vision")
    await repository(client, None, "rootrepo")
    shown = await call(client, "GET", f"{BASE}/acme", 200)
    assert shown["repository_count"] == 2
    listed = await call(client, "GET", BASE, 200)
    assert [(c["name"], c["repository_count"]) for c in listed["items"]] == [("acme", 2)]


async def test_duplicate_is_409(client: Client) -> None:
    await compartment(client, "acme", description="first")
    refused = await error(client, "POST", BASE, 409, "CONFLICT", json={"name": "acme", "description": "second"})
    assert "acme" in refused["message"]
    shown = await call(client, "GET", f"{BASE}/acme", 200)
    assert shown["description"] == "first"


async def test_compartment_created_by_a_push_is_a_duplicate_too(client: Client) -> None:
    from tests.helpers import push_image

    await push_image(client, "pushed/llm", "v1")
    await error(client, "POST", BASE, 409, "CONFLICT", json={"name": "pushed"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "acme/team"}, "name"),
        ({"name": "Acme"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "-acme"}, "name"),
        ({"name": "a" * 256}, "name"),
        ({"name": "acme\n"}, "name"),
        ({}, "name"),
        ({"name": 7}, "name"),
        ({"name": "acme", "description": "x" * 4097}, "description"),
        ({"name": "acme", "is_repository_created_on_first_push": "sometimes"}, "is_repository_created_on_first_push"),
        ({"name": "acme", "colour": "blue"}, "colour"),
    ],
)
async def test_create_validation_is_422_naming_the_field(client: Client, body: dict[str, Any], field: str) -> None:
    assert field in await invalid_fields(client, "POST", BASE, json=body)
    assert (await call(client, "GET", BASE, 200))["items"] == []


async def test_malformed_json_is_422(client: Client) -> None:
    fields = await invalid_fields(client, "POST", BASE, data=b"{not json", headers={"Content-Type": "application/json"})
    assert fields
    await invalid_fields(client, "POST", BASE, json=["acme"])


async def test_update_validation_is_422(client: Client) -> None:
    await compartment(client, "acme")
    assert await invalid_fields(client, "PATCH", f"{BASE}/acme", json={"description": 5}) == ["description"]
    assert await invalid_fields(client, "PATCH", f"{BASE}/acme", json={"name": "other"}) == ["name"]
    path = f"{BASE}/acme/configuration"
    fields = await invalid_fields(client, "PUT", path, json={"is_repository_created_on_first_push": "yes please"})
    assert fields == ["is_repository_created_on_first_push"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"description": "x"}),
        ("DELETE", "", None),
        ("GET", "/configuration", None),
        ("PUT", "/configuration", {"is_repository_created_on_first_push": True}),
    ],
)
async def test_unknown_compartment_is_404(client: Client, method: str, suffix: str, body: Any) -> None:
    refused = await error(client, method, f"{BASE}/ghost{suffix}", 404, "NOT_FOUND", json=body)
    assert "ghost" in refused["message"]
    assert (await call(client, "GET", BASE, 200))["items"] == []


async def test_delete_refuses_a_compartment_holding_repositories(client: Client) -> None:
    await compartment(client, "acme")
    await repository(client, "acme", "llm")
    refused = await error(client, "DELETE", f"{BASE}/acme", 409, "CONFLICT")
    assert "acme" in refused["message"] and "1 repositories" in refused["message"]
    await call(client, "GET", f"{BASE}/acme", 200)

    await call(client, "DELETE", "/api/v1/repositories/acme/llm", 204)
    await call(client, "DELETE", f"{BASE}/acme", 204)
    await error(client, "GET", f"{BASE}/acme", 404, "NOT_FOUND")
    await error(client, "DELETE", f"{BASE}/acme", 404, "NOT_FOUND")
    # The name is free again, with fresh settings.
    again = await compartment(client, "acme")
    assert again["repository_count"] == 0


async def test_repository_in_a_deleted_compartment_cannot_be_created(client: Client) -> None:
    await compartment(client, "acme")
    await call(client, "DELETE", f"{BASE}/acme", 204)
    spec = {"compartment_id": "acme", "display_name": "llm"}
    await error(client, "POST", "/api/v1/repositories", 404, "NOT_FOUND", json=spec)
