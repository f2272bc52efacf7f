"""Fixtures shared by every test: settings on a temporary data directory, and the app client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from modelyard.app import create_app
from modelyard.config import Settings

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", fsync=False, access_log=False, auth_enabled=False)


@pytest.fixture
async def make_client(aiohttp_client: Any, tmp_path: Path) -> ClientFactory:
    """Build a client for an app with given setting overrides (fresh data dir each call)."""
    counter = 0

    async def build(**overrides: Any) -> TestClient[Any, Any]:
        nonlocal counter
        counter += 1
        # Suites about the registry itself run without auth; the auth suites ask for it explicitly.
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data{counter}",
            "fsync": False,
            "access_log": False,
            "auth_enabled": False,
        }
        values.update(overrides)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(Settings(**values)))
        return client

    return build


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()
