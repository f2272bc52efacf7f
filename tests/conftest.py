"""Fixtures shared by every test: settings on a temporary data directory, and the app client."""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from modelyard.app import create_app
from modelyard.config import Settings
from modelyard.metadata.migrations import upgrade
from modelyard.metadata.sql import create_metadata_engine
from modelyard.storage.paths import sqlite_path
from tests.pg import postgres_server, postgres_url  # noqa: F401  (one PostgreSQL server for the session)
from tests.s3 import s3_options, s3_server  # noqa: F401  (one S3 server for the session)

# The CLI's Rich consoles are made once, when modelyard.cli is first imported, and read the
# terminal width then: whichever test imports it first must not leave them 80 columns wide for
# the tests that read tables (with pytest-xdist that is a different test in each worker).
os.environ["COLUMNS"] = "200"
os.environ["NO_COLOR"] = "1"

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", fsync=False, access_log=False, auth_enabled=False)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session; apps start from a copy of it.

    Running the migrations for every test costs about a third of a second each; the migrations
    themselves are still run here, and against an empty database by the contract suite.
    """
    path = tmp_path_factory.mktemp("template") / "modelyard.db"
    engine = create_metadata_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


def seed_data_dir(data_dir: Path, template: Path) -> Path:
    """A data directory whose SQLite database is a copy of the migrated template."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, sqlite_path(data_dir))
    return data_dir


@pytest.fixture
def backend() -> dict[str, Any]:
    """Setting overrides that pick the registry's backends; ``{}`` is SQLite + filesystem. A module
    importing ``tests.backends.backend`` runs on PostgreSQL + S3 as well."""
    return {}


@pytest.fixture
async def make_client(
    aiohttp_client: Any, tmp_path: Path, migrated_sqlite: Path, backend: dict[str, Any]
) -> ClientFactory:
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
        values.update(backend)
        values.update(overrides)
        if "database_url" not in values:
            seed_data_dir(Path(values["data_dir"]), migrated_sqlite)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(Settings(**values)))
        return client

    return build


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()
