"""Fixtures of the auth suites: registries with authentication on, built once per module.

The in-process live server (``tests/cli/liveserver.py``) serves ``create_app`` on a real socket;
the tests drive it synchronously with httpx and get every token from ``/auth/token``. The
first administrator is ``admin`` with :data:`~tests.auth.support.ADMIN_PASSWORD`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelyard.config import Settings
from tests.auth.support import ADMIN_PASSWORD, Registry
from tests.cli.liveserver import LiveServer
from tests.interop.serverproc import attach_server_logs

pytest_runtest_makereport = attach_server_logs

AuthRegistryFactory = Callable[..., Registry]


@contextmanager
def auth_registry(data_dir: Path, **settings: Any) -> Iterator[Registry]:
    """A live registry with auth on; yields a :class:`Registry` client for it."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "fsync": False,
        "access_log": False,
        "auth_enabled": True,
        "admin_password": ADMIN_PASSWORD,
        **settings,
    }
    server = LiveServer(Settings(**values)).start()
    client = Registry(server.url, data_dir=data_dir)
    try:
        yield client
    finally:
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistryFactory]:
    """Start auth-enabled live registries (each on a fresh data directory) for a whole module."""
    stack: list[Any] = []

    def start(**settings: Any) -> Registry:
        manager = auth_registry(tmp_path_factory.mktemp("auth-data"), **settings)
        registry = manager.__enter__()
        stack.append(manager)
        return registry

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)
