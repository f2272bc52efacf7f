"""A real modelyard (auth on) for the Pulumi suites, one per module, and an administrator's key.

The registry is the in-process live server (``tests/cli/liveserver.py``); the providers reach it
over HTTP through the admin API like any user's program would. ``MODELYARD_*`` variables and the
login store are isolated per test so that only what a test configures is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelyard.client.admin import AdminClient
from modelyard.config import Settings
from modelyard.schemas import admin as schemas
from tests.auth.support import ADMIN_PASSWORD
from tests.cli.liveserver import LiveServer
from tests.pulumi.runner import Engine


@dataclass
class Registry:
    url: str
    host: str
    admin_key: str
    admin: AdminClient

    def engine(self, **extra: str) -> Engine:
        """A fresh stack configured for this registry (the key as a secret, as users set it)."""
        config = {"modelyard:url": self.url, "modelyard:apiKey": self.admin_key, **extra}
        return Engine(config, secret_keys=["modelyard:apiKey"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("pulumi-registry"), fsync=False, access_log=False, auth_enabled=True,
        admin_password=ADMIN_PASSWORD,
    )  # fmt: skip
    server = LiveServer(settings).start()
    try:
        with AdminClient(server.url, auth=httpx.BasicAuth("admin", ADMIN_PASSWORD)) as basic:
            key = basic.create_api_key("user:admin", schemas.ApiKeyCreate(description="pulumi tests")).secret
        with AdminClient(server.url, auth=httpx.BasicAuth("admin", key)) as admin:
            yield Registry(server.url, server.host, key, admin)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MODELYARD_URL", "MODELYARD_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELYARD_CONFIG_DIR", str(tmp_path / "modelyard-config"))
