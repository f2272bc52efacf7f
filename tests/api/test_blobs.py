"""``/v2/<name>/blobs/<digest>``: HEAD, GET (with ``Range``) and DELETE, as the spec words them."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.support import data_of, unknown_digest
from tests.backends import backend  # noqa: F401  (every test here: SQLite+files and PostgreSQL+S3)
from tests.conftest import ClientFactory
from tests.helpers import error_code, push_blob, sha256

Client = TestClient[Any, Any]

DATA = b"0123456789abcdefghij"  # 20 bytes: easy to see which ones a Range returns


async def test_head_blob_has_length_and_digest_but_no_body(client: Client) -> None:
    digest = await push_blob(client, "acme/llm", DATA)
    response = await client.head(f"/v2/acme/llm/blobs/{digest}")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert await response.read() == b""


async def test_get_blob_returns_exact_bytes_with_digest(client: Client) -> None:
    digest = await push_blob(client, "acme/llm", DATA)
    response = await client.get(f"/v2/acme/llm/blobs/{digest}")
    assert response.status == 200
    assert await response.read() == DATA
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == "application/octet-stream"


async def test_get_empty_blob(client: Client) -> None:
    digest = await push_blob(client, "acme/llm", b"")
    assert digest == sha256(b"")
    response = await client.get(f"/v2/acme/llm/blobs/{digest}")
    assert response.status == 200
    assert response.headers["Content-Length"] == "0"
    assert await response.read() == b""


async def test_range_get_returns_206_with_exact_bytes(client: Client) -> None:
    digest = await push_blob(client, "acme/llm", DATA)
    cases = {
        "bytes=2-5": (DATA[2:6], "bytes 2-5/20"),
        "bytes=0-0": (DATA[:1], "bytes 0-0/20"),
        "bytes=15-": (DATA[15:], "bytes 15-19/20"),
        "bytes=-3": (DATA[-3:], "bytes 17-19/20"),
        "bytes=18-1000": (DATA[18:], "bytes 18-19/20"),  # a range past the end is cut to the end
    }
    for range_value, (expected, content_range) in cases.items():
        response = await client.get(f"/v2/acme/llm/blobs/{digest}", headers={"Range": range_value})
        assert response.status == 206, range_value
        assert await response.read() == expected, range_value
        assert response.headers["Content-Range"] == content_range, range_value
        assert response.headers["Content-Length"] == str(len(expected)), range_value
        assert response.headers["Docker-Content-Digest"] == digest


async def test_range_beyond_end_is_416(client: Client) -> None:
    digest = await push_blob(client, "acme/llm", DATA)
    response = await client.get(f"/v2/acme/llm/blobs/{digest}", headers={"Range": "bytes=20-30"})
    assert response.status == 416
    assert response.headers["Content-Range"] == "bytes */20"
    assert await response.read() == b""


async def test_a_zero_length_suffix_range_is_416(client: Client) -> None:
    """RFC 9110 14.1.1: a suffix range is satisfiable only with a non-zero length."""
    digest = await push_blob(client, "acme/llm", DATA)
    for value in ("bytes=-0", "bytes=-000", "BYTES=-0"):
        response = await client.get(f"/v2/acme/llm/blobs/{digest}", headers={"Range": value})
        assert response.status == 416, value
        assert response.headers["Content-Range"] == "bytes */20", value
        assert await response.read() == b"", value


async def test_an_empty_range_or_another_unit_is_ignored(client: Client) -> None:
    """RFC 9110 14.2: a Range a server does not understand is ignored: the whole blob, 200."""
    digest = await push_blob(client, "acme/llm", DATA)
    for value in ("", " ", "items=0-5", "lines=-0"):
        response = await client.get(f"/v2/acme/llm/blobs/{digest}", headers={"Range": value})
        assert response.status == 200, repr(value)
        assert await response.read() == DATA, repr(value)
        assert "Content-Range" not in response.headers


async def test_if_range_serves_the_range_only_for_the_current_validator(client: Client) -> None:
    """RFC 9110 13.1.5: a validator that does not match means the whole blob (200)."""
    digest = await push_blob(client, "acme/llm", DATA)
    url = f"/v2/acme/llm/blobs/{digest}"
    whole = await client.get(url)
    etag = whole.headers["ETag"]
    # Last-Modified is optional: a blob streamed from S3 goes out with its digest as ETag only.
    dated = [whole.headers["Last-Modified"]] if "Last-Modified" in whole.headers else []
    for validator in (etag, f'"{digest}"', *dated):
        response = await client.get(url, headers={"Range": "bytes=2-5", "If-Range": validator})
        assert response.status == 206, validator
        assert await response.read() == DATA[2:6], validator
        assert response.headers["Content-Range"] == "bytes 2-5/20"
    stale = ['"0-14"', f"W/{etag}", '"sha256:' + "0" * 64 + '"', "Mon, 01 Jan 2001 00:00:00 GMT", "not a validator"]
    for validator in stale:
        for value in ("bytes=2-5", "bytes=-0"):
            response = await client.get(url, headers={"Range": value, "If-Range": validator})
            assert response.status == 200, (validator, value)
            assert await response.read() == DATA, (validator, value)
            assert "Content-Range" not in response.headers


async def test_range_on_large_blob_crosses_storage_batches(client: Client) -> None:
    data = data_of(3 * 1024 * 1024 + 123, seed=7)
    digest = await push_blob(client, "acme/big", data)
    start, end = 1024 * 1024 - 10, 2 * 1024 * 1024 + 10
    response = await client.get(f"/v2/acme/big/blobs/{digest}", headers={"Range": f"bytes={start}-{end}"})
    assert response.status == 206
    assert await response.read() == data[start : end + 1]


async def test_unknown_blob_is_404_blob_unknown(client: Client) -> None:
    await push_blob(client, "acme/llm", DATA)
    missing = unknown_digest()
    response = await client.get(f"/v2/acme/llm/blobs/{missing}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"
    head = await client.head(f"/v2/acme/llm/blobs/{missing}")
    assert head.status == 404
    assert await head.read() == b""


async def test_blob_of_another_repository_is_not_visible(client: Client) -> None:
    digest = await push_blob(client, "team-a/model", DATA)
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/v2/team-b/model/blobs/{digest}")
        assert response.status == 404, method
    response = await client.get(f"/v2/team-b/model/blobs/{digest}")
    assert await error_code(response) == "BLOB_UNKNOWN"
    assert (await client.get(f"/v2/team-a/model/blobs/{digest}")).status == 200


async def test_delete_blob_then_it_is_gone(client: Client) -> None:
    digest = await push_blob(client, "acme/llm", DATA)
    deleted = await client.delete(f"/v2/acme/llm/blobs/{digest}")
    assert deleted.status == 202
    assert await deleted.read() == b""
    response = await client.get(f"/v2/acme/llm/blobs/{digest}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"
    assert (await client.head(f"/v2/acme/llm/blobs/{digest}")).status == 404
    again = await client.delete(f"/v2/acme/llm/blobs/{digest}")
    assert again.status == 404
    assert await error_code(again) == "BLOB_UNKNOWN"


async def test_delete_in_one_repository_leaves_the_same_bytes_in_another(client: Client) -> None:
    digest = await push_blob(client, "acme/one", DATA)
    assert await push_blob(client, "acme/two", DATA) == digest
    assert (await client.delete(f"/v2/acme/one/blobs/{digest}")).status == 202
    response = await client.get(f"/v2/acme/two/blobs/{digest}")
    assert response.status == 200
    assert await response.read() == DATA


async def test_delete_unknown_blob_is_404(client: Client) -> None:
    response = await client.delete(f"/v2/acme/llm/blobs/{unknown_digest()}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"


async def test_delete_disabled_is_405_and_keeps_the_blob(make_client: ClientFactory) -> None:
    client = await make_client(delete_enabled=False)
    digest = await push_blob(client, "acme/llm", DATA)
    response = await client.delete(f"/v2/acme/llm/blobs/{digest}")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"
    kept = await client.get(f"/v2/acme/llm/blobs/{digest}")
    assert kept.status == 200
    assert await kept.read() == DATA


async def test_invalid_blob_digest_is_400_digest_invalid(client: Client) -> None:
    for bad in ("sha256:abc", "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha384:" + "0" * 96, "notadigest"):
        for method in ("GET", "DELETE"):
            response = await client.request(method, f"/v2/acme/llm/blobs/{bad}")
            assert response.status == 400, (method, bad)
            assert await error_code(response) == "DIGEST_INVALID", (method, bad)
