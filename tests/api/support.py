"""Small helpers for the /v2 API tests: raw (un-normalised) URLs, upload sessions, test data."""

from __future__ import annotations

import random
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
