"""``GET /v2/<name>/tags/list``: lexical order, ``n``/``last`` pagination and the ``Link`` header."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import OCI_MANIFEST, error_code, push_blob, push_image

Client = TestClient[Any, Any]

# Case-insensitive lexical order; ties broken byte-wise ("A" < "a").
TAGS_IN_ORDER = ["1.0", "10", "9", "A", "a", "alpha", "Beta", "latest", "V1", "v2"]
LINK = re.compile(r'^<([^>]+)>;\s*rel="next"$')


async def tag_all(client: Client, repo: str, tags: list[str]) -> None:
    pushed = await push_image(client, repo, tags[0])
    for tag in tags[1:]:
        response = await client.put(
            f"/v2/{repo}/manifests/{tag}", data=pushed.body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status == 201, await response.text()


async def tags_of(client: Client, path: str) -> tuple[list[str], str | None]:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    payload = await response.json()
    return payload["tags"], response.headers.get("Link")


async def test_tags_are_in_case_insensitive_lexical_order(client: Client) -> None:
    await tag_all(client, "acme/llm", list(reversed(TAGS_IN_ORDER)))
    response = await client.get("/v2/acme/llm/tags/list")
    assert response.status == 200
    assert await response.json() == {"name": "acme/llm", "tags": TAGS_IN_ORDER}
    assert "Link" not in response.headers


async def test_n_zero_is_empty_without_link(client: Client) -> None:
    await tag_all(client, "acme/llm", TAGS_IN_ORDER)
    tags, link = await tags_of(client, "/v2/acme/llm/tags/list?n=0")
    assert tags == []
    assert link is None
    tags, link = await tags_of(client, "/v2/acme/llm/tags/list?n=0&last=A")
    assert (tags, link) == ([], None)


async def test_n_larger_than_count_returns_all_without_link(client: Client) -> None:
    await tag_all(client, "acme/llm", TAGS_IN_ORDER)
    # Including numbers longer than Python converts by default (4300 digits).
    for n in (str(len(TAGS_IN_ORDER)), str(len(TAGS_IN_ORDER) + 1), "100000", "9" * 30, "9" * 5000):
        tags, link = await tags_of(client, f"/v2/acme/llm/tags/list?n={n}")
        assert tags == TAGS_IN_ORDER, n[:40]
        assert link is None, n[:40]
    tags, link = await tags_of(client, "/v2/acme/llm/tags/list?n=" + "0" * 5000 + "3")
    assert tags == TAGS_IN_ORDER[:3]
    assert link is not None


async def test_link_pagination_walks_every_tag_once(client: Client) -> None:
    await tag_all(client, "acme/llm", TAGS_IN_ORDER)
    tags, link = await tags_of(client, "/v2/acme/llm/tags/list?n=3")
    assert tags == TAGS_IN_ORDER[:3]
    assert link is not None
    match = LINK.match(link)
    assert match is not None, link
    assert match.group(1).startswith("/v2/acme/llm/tags/list?")
    seen = list(tags)
    pages = 1
    while link is not None:
        match = LINK.match(link)
        assert match is not None, link
        page, link = await tags_of(client, match.group(1))
        assert 0 < len(page) <= 3
        seen += page
        pages += 1
    assert seen == TAGS_IN_ORDER
    assert pages == 4  # 3 + 3 + 3 + 1


async def test_no_link_when_the_page_ends_exactly_at_the_last_tag(client: Client) -> None:
    await tag_all(client, "acme/llm", TAGS_IN_ORDER[:4])
    tags, link = await tags_of(client, "/v2/acme/llm/tags/list?n=2")
    assert (tags, link is not None) == (TAGS_IN_ORDER[:2], True)
    tags, link = await tags_of(client, f"/v2/acme/llm/tags/list?n=2&last={TAGS_IN_ORDER[1]}")
    assert tags == TAGS_IN_ORDER[2:4]
    assert link is None


async def test_last_starts_after_the_given_tag(client: Client) -> None:
    await tag_all(client, "acme/llm", TAGS_IN_ORDER)
    tags, link = await tags_of(client, "/v2/acme/llm/tags/list?last=alpha")
    assert tags == TAGS_IN_ORDER[TAGS_IN_ORDER.index("alpha") + 1 :]
    assert link is None
    tags, _ = await tags_of(client, "/v2/acme/llm/tags/list?n=2&last=A")
    assert tags == ["a", "alpha"]
    # ``last`` need not be an existing tag: it is a position in the order.
    tags, _ = await tags_of(client, "/v2/acme/llm/tags/list?n=2&last=b")
    assert tags == ["Beta", "latest"]


async def test_last_beyond_the_end_is_empty(client: Client) -> None:
    await tag_all(client, "acme/llm", TAGS_IN_ORDER)
    for last in ("v2", "zzz"):
        tags, link = await tags_of(client, f"/v2/acme/llm/tags/list?last={last}")
        assert tags == [], last
        assert link is None
        tags, link = await tags_of(client, f"/v2/acme/llm/tags/list?n=5&last={last}")
        assert (tags, link) == ([], None)


async def test_deleted_and_moved_tags(client: Client) -> None:
    await tag_all(client, "acme/llm", ["a", "b", "c"])
    assert (await client.delete("/v2/acme/llm/manifests/b")).status == 202
    await push_image(client, "acme/llm", "c", layers=[b"moved"])
    tags, _ = await tags_of(client, "/v2/acme/llm/tags/list")
    assert tags == ["a", "c"]


async def test_repository_without_tags_lists_none(client: Client) -> None:
    await push_blob(client, "acme/blobs-only", b"data")
    response = await client.get("/v2/acme/blobs-only/tags/list")
    assert response.status == 200
    assert await response.json() == {"name": "acme/blobs-only", "tags": []}


async def test_unknown_repository_is_name_unknown(client: Client) -> None:
    await tag_all(client, "acme/llm", ["v1"])
    for path in ("/v2/acme/nothing/tags/list", "/v2/acme/tags/list", "/v2/acme/llm/sub/tags/list"):
        response = await client.get(path)
        assert response.status == 404, path
        assert await error_code(response) == "NAME_UNKNOWN", path


async def test_invalid_n_is_400(client: Client) -> None:
    await tag_all(client, "acme/llm", ["v1"])
    for n in ("-1", "abc", "1.5", "0x10", " 1", "\u00b2", "\u0661"):  # superscript two, Arabic-Indic one
        response = await client.get("/v2/acme/llm/tags/list", params={"n": n})
        assert response.status == 400, n
        await error_code(response)
