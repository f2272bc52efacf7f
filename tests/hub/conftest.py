"""The registry the Hub API tests run against: a live server (in-process, auth on) whose
``/resolve/`` answers are recorded (method, path, status, bytes) so tests count what the client
really downloaded; an ``acme`` compartment with a public and a private repository, and API keys
of a pusher, a reader and a stranger. Each test sees no Hugging Face token or cache of the
machine's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from modelyard.app import create_app
from modelyard.config import Settings
from tests.cli import liveserver
from tests.hub.support import ADMIN_PASSWORD, Hub, Served


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    served = Served()

    def counting_app(settings: Settings) -> web.Application:
        application = create_app(settings)

        async def record(request: web.Request, response: web.StreamResponse) -> None:
            if "/resolve/" in request.path:
                size = response.content_length or 0
                served.responses.append((request.method, request.path, response.status, size))

        application.on_response_prepare.append(record)
        return application

    data = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(liveserver, "create_app", counting_app)
        with liveserver.live_server(data_dir=data, auth_enabled=True, admin_password=ADMIN_PASSWORD) as server:
            admin = httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=30)

            def call(method: str, path: str, status: int, **kwargs: Any) -> Any:
                response = admin.request(method, path, **kwargs)
                assert response.status_code == status, response.text
                return response.json() if response.content else None

            call("POST", "/api/v1/compartments", 201, json={"name": "acme"})
            call("POST", "/api/v1/repositories", 201, json={"compartment_id": "acme", "display_name": "pub",
                                                            "is_public": True})  # fmt: skip
            call("POST", "/api/v1/repositories", 201, json={"compartment_id": "acme", "display_name": "priv"})
            keys = {}
            for name, role in (("pusher", "writer"), ("reader", "reader"), ("stranger", None)):
                call("POST", "/api/v1/service-accounts", 201, json={"name": f"{name}@acme"})
                keys[name] = call("POST", f"/api/v1/service-accounts/{name}@acme/keys", 201, json={})["secret"]
                if role:
                    policy = call("GET", "/api/v1/compartments/acme/iam", 200)
                    policy["bindings"].append({"role": role, "members": [f"serviceAccount:{name}@acme"]})
                    call("PUT", "/api/v1/compartments/acme/iam", 200, json=policy)
            admin.close()
            yield Hub(server, served, keys["pusher"], keys["reader"], keys["stranger"])


@pytest.fixture(autouse=True)
def _no_hf_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No token or cache of the machine's: the client sees only what a test gives it."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
