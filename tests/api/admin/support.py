"""Helpers for the admin API tests: JSON calls that check the status, the 422 field list, stores."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def call(client: Client, method: str, path: str, status: int, **kwargs: Any) -> Any:
    """One admin request that must answer ``status``; returns the JSON body (``None`` for 204)."""
    response = await client.request(method, path, **kwargs)
    text = await response.text()
    assert response.status == status, f"{method} {path}: {response.status} {text}"
    if status == 204:
        assert text == ""
        return None
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    return await response.json()


async def error(client: Client, method: str, path: str, status: int, code: str, **kwargs: Any) -> dict[str, Any]:
    """A refusal: ``status`` with the OCI error body and ``code``; returns the single error object."""
    body = await call(client, method, path, status, **kwargs)
    assert set(body) == {"errors"}, body
    assert len(body["errors"]) == 1, body
    first: dict[str, Any] = body["errors"][0]
    assert first["code"] == code, first
    assert isinstance(first["message"], str) and first["message"], first
    return first


async def invalid_fields(client: Client, method: str, path: str, **kwargs: Any) -> list[str]:
    """A 422 ``VALIDATION_FAILED``; returns the fields ``detail`` names (each with a message)."""
    first = await error(client, method, path, 422, "VALIDATION_FAILED", **kwargs)
    detail = first["detail"]
    assert isinstance(detail, list) and detail, first
    for problem in detail:
        assert isinstance(problem["message"], str) and problem["message"], problem
    return [str(problem["field"]) for problem in detail]


async def compartment(client: Client, name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = await call(client, "POST", "/api/v1/compartments", 201, json={"name": name, **fields})
    return body


async def repository(client: Client, compartment_id: str | None, display_name: str, **fields: Any) -> dict[str, Any]:
    spec = {"compartment_id": compartment_id, "display_name": display_name, **fields}
    body: dict[str, Any] = await call(client, "POST", "/api/v1/repositories", 201, json=spec)
    return body


async def get_repository(client: Client, name: str) -> dict[str, Any]:
    body: dict[str, Any] = await call(client, "GET", f"/api/v1/repositories/{name}", 200)
    return body


async def set_registry_config(client: Client, *, repositories: bool, compartments: bool) -> None:
    config = {"is_repository_created_on_first_push": repositories, "is_compartment_created_on_first_push": compartments}
    assert await call(client, "PUT", "/api/v1/configuration", 200, json=config) == config


async def walk(client: Client, path: str, limit: int, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow ``next_page`` to the end; returns every item and the number of pages."""
    items: list[dict[str, Any]] = []
    pages = 0
    page: str | None = None
    while True:
        query = {**params, "limit": str(limit)}
        if page is not None:
            query["page"] = page
        body = await call(client, "GET", path, 200, params=query)
        pages += 1
        assert len(body["items"]) <= limit
        items += body["items"]
        page = body["next_page"]
        if page is None:
            return items, pages
        assert len(body["items"]) == limit, "only a full page may have a next page"
        assert pages < 100


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def parse_time(value: str) -> datetime:
    """An API timestamp: ISO 8601 and timezone-aware (every stored time is UTC)."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no timezone"
    return parsed.astimezone(UTC)
