"""Helpers of the lifecycle tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from modelyard.api.context import REGISTRY
from modelyard.services.registry import Registry


def registry(client: TestClient[Any, Any]) -> Registry:
    return client.app[REGISTRY]


async def api(client: TestClient[Any, Any], method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await client.request(method, path, json=body)
    text = await response.text()
    assert response.status == status, text
    return await response.json() if text else None
