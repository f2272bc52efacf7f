"""Backends for the contract suite: every test here runs once per metadata backend.

``database_url`` is parametrized over SQLite (a file in the test's tmp dir) and PostgreSQL (a
fresh database on the server :mod:`tests.pg` starts); ``store`` is a migrated
:class:`SqlMetadataStore` on it, built the way ``create_app`` builds one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.metadata.migrations import upgrade
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[SqlMetadataStore]:
    engine = create_metadata_engine(database_url)
    upgrade(engine)
    metadata = SqlMetadataStore(engine)
    yield metadata
    metadata.close()
