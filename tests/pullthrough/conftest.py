"""Fixtures of the pull-through cache suites (see ``support.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pullthrough.support import CountingProxy, Rig, cache_server
from tests.replication.test_foreign_and_cli import distribution  # noqa: F401  (Distribution 2.8.2 for a test)


@pytest.fixture
def rig(tmp_path: Path, backend: dict[str, Any]) -> Iterator[Rig]:
    """``backend``: the cache's database and blob store (SQLite + files unless a module says)."""
    with cache_server(tmp_path / "upstream") as upstream:
        proxy = CountingProxy(upstream.url).start()
        try:
            with cache_server(tmp_path / "cache", **backend) as cache:
                yield Rig(upstream, proxy, cache)
        finally:
            proxy.stop()
