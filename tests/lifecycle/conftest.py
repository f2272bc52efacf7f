"""Every lifecycle test runs on SQLite and on PostgreSQL (the suite's own server, tests/pg.py)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Setting overrides naming the metadata database (SQLite in the data directory, or the
    suite's PostgreSQL), with scheduled work off unless a test asks for it."""
    if request.param == "sqlite":
        return {"background_jobs": False}
    return {"database_url": request.getfixturevalue("postgres_url"), "background_jobs": False}
