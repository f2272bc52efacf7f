"""``GET /v2/_catalog``: every repository, in order, with ``n``/``last`` pagination and ``Link``."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import error_code, push_image

Client = TestClient[Any, Any]

REPOS = ["acme/llm", "acme/llm/adapters", "acme/vision", "beta", "zeta/x"]
LINK = re.compile(r'^<([^>]+)>;\s*rel="next"$')


async def catalog(client: Client, path: str) -> tuple[list[str], str | None]:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    payload = await response.json()
    assert set(payload) == {"repositories"}
    return payload["repositories"], response.headers.get("Link")


async def push_all(client: Client) -> None:
    for repo in reversed(REPOS):
        await push_image(client, repo, "v1")


async def test_empty_registry_has_an_empty_catalog(client: Client) -> None:
    assert await catalog(client, "/v2/_catalog") == ([], None)


async def test_catalog_lists_every_repository_in_order(client: Client) -> None:
    await push_all(client)
    assert await catalog(client, "/v2/_catalog") == (REPOS, None)
    assert await catalog(client, "/v2/_catalog?n=100") == (REPOS, None)


async def test_catalog_pagination_with_link(client: Client) -> None:
    await push_all(client)
    names, link = await catalog(client, "/v2/_catalog?n=2")
    assert names == REPOS[:2]
    seen = list(names)
    while link is not None:
        match = LINK.match(link)
        assert match is not None, link
        assert match.group(1).startswith("/v2/_catalog?")
        page, link = await catalog(client, match.group(1))
        assert 0 < len(page) <= 2
        seen += page
    assert seen == REPOS


async def test_catalog_n_zero_and_last(client: Client) -> None:
    await push_all(client)
    assert await catalog(client, "/v2/_catalog?n=0") == ([], None)
    assert await catalog(client, "/v2/_catalog?last=acme/vision") == (REPOS[3:], None)
    assert await catalog(client, "/v2/_catalog?n=1&last=acme/llm") == (["acme/llm/adapters"], catalog_link())
    assert await catalog(client, "/v2/_catalog?last=zzz") == ([], None)
    assert await catalog(client, f"/v2/_catalog?n={len(REPOS)}") == (REPOS, None)


def catalog_link() -> str:
    return '</v2/_catalog?n=1&last=acme%2Fllm%2Fadapters>; rel="next"'


async def test_catalog_invalid_n_is_400(client: Client) -> None:
    for n in ("-1", "many", "²"):
        response = await client.get("/v2/_catalog", params={"n": n})
        assert response.status == 400, n
        await error_code(response)
