"""Small helpers for the /v2 API tests: raw (un-normalised) URLs, upload sessions, test data."""

from __future__ import annotations

import base64
import random
import re
import uuid
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from yarl import URL

Client = TestClient[Any, Any]


async def raw_request(client: Client, method: str, raw_path: str, **kwargs: Any) -> ClientResponse:
    """Send ``raw_path`` exactly as written (no dot-segment removal, no re-quoting by the client)."""
    root = str(client.make_url("/")).rstrip("/")
    url = URL(root + raw_path, encoded=True)
    return await client.session.request(method, url, **kwargs)


async def start_upload(client: Client, repo: str) -> str:
    """``POST /v2/<repo>/blobs/uploads/``; returns the session's Location."""
    response = await client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status == 202, await response.text()
    return response.headers["Location"]


def upload_id_of(location: str) -> str:
    return URL(location).path.rsplit("/", 1)[-1]


def data_of(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, no accidental repeats)."""
    return random.Random(seed).randbytes(size)


def unknown_digest(seed: str = "nothing") -> str:
    return "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, seed).hex * 2


# -- auth (Docker token auth, as clients speak it) ---------------------------------------------------

ADMIN_PASSWORD = "admin-Pa55word-for-tests"


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge_params(header: str) -> dict[str, str]:
    """``Bearer realm="...",service="..."`` -> ``{"realm": ..., "service": ...}``."""
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


async def token(client: Client, scopes: list[str], credentials: tuple[str, str] | None) -> str:
    """``GET /auth/token`` as docker and go-containerregistry send it (Basic credentials or none)."""
    params = [("scope", scope) for scope in scopes] + [("service", "modelyard")]
    headers = basic(*credentials) if credentials else {}
    response = await client.get("/auth/token", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return str((await response.json())["token"])
