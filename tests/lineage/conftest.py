"""Fixtures of the lineage and diff suites: a database URL per backend (SQLite in the data
directory, or a fresh PostgreSQL database), so each test runs on both, and a private config
directory for the clients (stored logins, resumable upload state)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

_numbers = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """``None`` (the registry's SQLite file in its data directory) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    name = f"lineage_{next(_numbers)}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture(scope="module", autouse=True)
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("client-config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELYARD_CONFIG_DIR", str(path))
        patch.delenv("MODELYARD_API_KEY", raising=False)
        patch.delenv("MODELYARD_URL", raising=False)
        yield path
