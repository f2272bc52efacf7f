"""Who may: a repository's repoAdmin manages its retention but cannot raise its quota; reading
usage of the whole registry is for administrators; anonymous callers are asked to log in."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import ClientFactory

ADMIN = "Basic " + base64.b64encode(b"admin:admin-Pa55word-for-tests").decode()
ALICE = "Basic " + base64.b64encode(b"alice:alice-Pa55word").decode()


async def call(client: TestClient[Any, Any], who: str | None, method: str, path: str, body: Any = None) -> int:
    headers = {"Authorization": who} if who else {}
    response = await client.request(method, path, json=body, headers=headers)
    return response.status


async def test_retention_is_the_repo_admins_and_quotas_the_administrators(make_client: ClientFactory) -> None:
    client = await make_client(auth_enabled=True, admin_password="admin-Pa55word-for-tests")
    assert await call(client, ADMIN, "POST", "/api/v1/users",
                      {"name": "alice", "email": "alice@acme.com", "password": "alice-Pa55word"}) == 201  # fmt: skip
    assert await call(client, ADMIN, "POST", "/api/v1/compartments", {"name": "acme"}) == 201
    assert await call(client, ADMIN, "POST", "/api/v1/repositories",
                      {"compartment_id": "acme", "display_name": "llm"}) == 201  # fmt: skip
    binding = {"bindings": [{"role": "repoAdmin", "members": ["user:alice"]}]}
    assert await call(client, ADMIN, "PUT", "/api/v1/repositories/acme/llm/-/iam", binding) == 200
    assert await call(client, ADMIN, "POST", "/api/v1/repositories",
                      {"compartment_id": "acme", "display_name": "other"}) == 201  # fmt: skip

    repo = "/api/v1/repositories/acme/llm/-"
    assert await call(client, ALICE, "PUT", f"{repo}/retention", {"keep_last": 3}) == 200
    assert await call(client, ALICE, "POST", "/api/v1/retention/plan", {"repository": "acme/llm"}) == 200
    assert await call(client, ALICE, "POST", "/api/v1/retention/run", {"repository": "acme/llm"}) == 200
    assert await call(client, ALICE, "PUT", f"{repo}/quota", {"limit_bytes": 10**15}) == 403
    assert await call(client, ALICE, "GET", "/api/v1/usage") == 403
    assert await call(client, ALICE, "GET", "/api/v1/gc/runs") == 403
    # Another repository of the compartment, and the compartment itself, are not hers.
    assert await call(client, ALICE, "PUT", "/api/v1/repositories/acme/other/-/retention", {"keep_last": 1}) == 404
    assert await call(client, ALICE, "PUT", "/api/v1/compartments/acme/retention", {"keep_last": 1}) == 403
    assert await call(client, ALICE, "POST", "/api/v1/retention/run", {"compartment": "acme"}) == 403
    assert await call(client, None, "POST", "/api/v1/retention/plan", {"repository": "acme/llm"}) == 401

    assert await call(client, ADMIN, "PUT", f"{repo}/quota", {"limit_bytes": 1000}) == 200
    assert await call(client, ALICE, "GET", f"{repo}/quota") == 200
    assert await call(client, ADMIN, "GET", "/api/v1/usage") == 200
    assert await call(client, ADMIN, "GET", "/api/v1/usage?compartment=acme") == 200
