"""``/v2/<name>/blobs/uploads/``: monolithic, single-POST, chunked and streamed uploads, status,
cancel, cross-repository mounts, and every way an upload can be refused."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from modelyard.api.oci.common import REGISTRY
from modelyard.bootstrap import open_blob_store
from modelyard.storage.filesystem import FilesystemBlobStore
from modelyard.storage.s3 import S3BlobStore
from tests.api.support import data_of, raw_request, start_upload, unknown_digest, upload_id_of
from tests.backends import backend  # noqa: F401  (every test here: SQLite+files and PostgreSQL+S3)
from tests.conftest import ClientFactory
from tests.helpers import error_code, push_blob, sha256

Client = TestClient[Any, Any]
MiB = 1024 * 1024


def stored_uploads(client: Client) -> list[str]:
    """The uploads the app's blob store holds, whatever the backend."""
    return [item.key for item in open_blob_store(client.app[REGISTRY].settings).scan_uploads()]


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


async def patch_chunk(client: Client, location: str, data: bytes, start: int) -> Any:
    return await client.patch(
        location,
        data=data,
        headers={"Content-Range": f"{start}-{start + len(data) - 1}", "Content-Type": "application/octet-stream"},
    )


async def upload_range(client: Client, location: str) -> str:
    status = await client.get(location)
    assert status.status == 204, await status.text()
    return status.headers["Range"]


async def assert_blob(client: Client, repo: str, digest: str, data: bytes) -> None:
    response = await client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status == 200, await response.text()
    assert response.headers["Docker-Content-Digest"] == digest
    assert await response.read() == data


async def stream(pieces: list[bytes], delay: float = 0.0) -> AsyncIterator[bytes]:
    for piece in pieces:
        if delay:
            await asyncio.sleep(delay)
        yield piece


# -- monolithic -------------------------------------------------------------------------------


async def test_post_then_put_creates_the_blob(client: Client) -> None:
    data = b"monolithic layer"
    started = await client.post("/v2/acme/llm/blobs/uploads/")
    assert started.status == 202
    location = started.headers["Location"]
    assert location.startswith("/v2/acme/llm/blobs/uploads/")
    assert started.headers["Docker-Upload-UUID"] == upload_id_of(location)
    done = await client.put(
        location, params={"digest": sha256(data)}, data=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert done.status == 201
    assert done.headers["Location"] == f"/v2/acme/llm/blobs/{sha256(data)}"
    assert done.headers["Docker-Content-Digest"] == sha256(data)
    fetched = await client.get(done.headers["Location"])
    assert await fetched.read() == data
    # The session is closed once committed.
    closed = await client.get(location)
    assert closed.status == 404
    assert await error_code(closed) == "BLOB_UPLOAD_UNKNOWN"


async def test_single_post_with_digest_creates_the_blob(client: Client) -> None:
    data = b"single post"
    response = await client.post("/v2/acme/llm/blobs/uploads/", params={"digest": sha256(data)}, data=data)
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/acme/llm/blobs/{sha256(data)}"
    assert response.headers["Docker-Content-Digest"] == sha256(data)
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_single_post_with_wrong_digest_is_refused(client: Client) -> None:
    data = b"single post"
    wrong = sha256(b"something else")
    response = await client.post("/v2/acme/llm/blobs/uploads/", params={"digest": wrong}, data=data)
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    for digest in (wrong, sha256(data)):
        assert (await client.head(f"/v2/acme/llm/blobs/{digest}")).status == 404


async def test_failed_single_post_leaves_no_upload_behind(client: Client) -> None:
    """Nobody knows the id of a single POST's session: when it fails, it must not linger on disk."""
    data = data_of(2 * MiB, seed=15)
    response = await client.post("/v2/acme/llm/blobs/uploads/", params={"digest": sha256(b"other")}, data=data)
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    assert stored_uploads(client) == []
    # An open session is in the store, so the check above would have seen a leak.
    await start_upload(client, "acme/llm")
    assert len(stored_uploads(client)) == 1


async def test_post_advertises_chunk_min_length(make_client: ClientFactory) -> None:
    client = await make_client(chunk_min_length=65536)
    response = await client.post("/v2/acme/llm/blobs/uploads/")
    assert response.status == 202
    assert response.headers["OCI-Chunk-Min-Length"] == "65536"


async def test_upload_ids_are_distinct_random_uuid4(client: Client) -> None:
    ids = set()
    for _ in range(20):
        location = await start_upload(client, "acme/llm")
        parsed = uuid.UUID(upload_id_of(location))
        assert parsed.version == 4
        assert str(parsed) == upload_id_of(location)
        ids.add(parsed)
    assert len(ids) == 20
    # No two share a long common prefix (they are not sequential or time-based).
    texts = sorted(i.hex for i in ids)
    assert all(a[:8] != b[:8] for a, b in itertools.pairwise(texts))


# -- chunked ------------------------------------------------------------------------------------


async def test_chunked_upload_reports_range_after_each_chunk(client: Client) -> None:
    data = data_of(3000, seed=1)
    location = await start_upload(client, "acme/llm")
    for start in (0, 1000, 2000):
        response = await patch_chunk(client, location, data[start : start + 1000], start)
        assert response.status == 202, await response.text()
        assert response.headers["Range"] == f"0-{start + 999}"
        assert response.headers["Location"] == location
        assert response.headers["Docker-Upload-UUID"] == upload_id_of(location)
        location = response.headers["Location"]
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] == "0-2999"
    assert status.headers["Location"] == location
    assert await status.read() == b""
    done = await client.put(location, params={"digest": sha256(data)})
    assert done.status == 201
    assert done.headers["Docker-Content-Digest"] == sha256(data)
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_fresh_session_status_is_204(client: Client) -> None:
    location = await start_upload(client, "acme/llm")
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Location"] == location
    assert status.headers["Range"] == "0-0"


async def test_final_chunk_in_the_closing_put(client: Client) -> None:
    data = data_of(2500, seed=2)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:2000], 0)).status == 202
    done = await client.put(
        location,
        params={"digest": sha256(data)},
        data=data[2000:],
        headers={"Content-Range": "2000-2499", "Content-Type": "application/octet-stream"},
    )
    assert done.status == 201, await done.text()
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_final_chunk_in_put_without_content_range(client: Client) -> None:
    data = data_of(1500, seed=3)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:1000], 0)).status == 202
    done = await client.put(location, params={"digest": sha256(data)}, data=data[1000:])
    assert done.status == 201, await done.text()
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_bodyless_closing_put_with_content_range_is_refused(client: Client) -> None:
    """Content-Range describes a final chunk in the body; without one it announces bytes that
    never come (the spec's end-6 failures are 404/400: 400 SIZE_INVALID)."""
    data = data_of(10, seed=9)
    location = await start_upload(client, "acme/llm")
    for content_range, digest in (("0-9", sha256(b"")), ("0-9", sha256(data))):
        response = await client.put(location, params={"digest": digest}, headers={"Content-Range": content_range})
        assert response.status == 400, await response.text()
        assert await error_code(response) == "SIZE_INVALID"
        assert "no body" in (await response.json())["errors"][0]["message"]
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(b'')}")).status == 404
    # The session is untouched: the chunk sent properly closes it.
    assert await upload_range(client, location) == "0-0"
    assert (await patch_chunk(client, location, data, 0)).status == 202
    refused = await client.put(location, params={"digest": sha256(data)}, headers={"Content-Range": "10-19"})
    assert refused.status == 400
    done = await client.put(location, params={"digest": sha256(data)})
    assert done.status == 201, await done.text()
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_patch_without_content_range_streams_and_appends(client: Client) -> None:
    first, second = data_of(5000, seed=4), data_of(3000, seed=5)
    location = await start_upload(client, "acme/llm")
    # Chunked transfer encoding, no Content-Length and no Content-Range: a plain stream.
    response = await client.patch(location, data=stream([first[:1234], first[1234:]]))
    assert response.status == 202, await response.text()
    assert response.headers["Range"] == "0-4999"
    response = await client.patch(response.headers["Location"], data=second)
    assert response.status == 202
    assert response.headers["Range"] == "0-7999"
    done = await client.put(response.headers["Location"], params={"digest": sha256(first + second)})
    assert done.status == 201
    await assert_blob(client, "acme/llm", sha256(first + second), first + second)


async def test_out_of_order_chunk_is_416_with_current_range(client: Client) -> None:
    data = data_of(30, seed=6)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:10], 0)).status == 202
    for start in (20, 5, 0):  # a gap, an overlap, a replay
        response = await patch_chunk(client, location, data[start : start + 10], start)
        assert response.status == 416, start
        assert response.headers["Range"] == "0-9", start
        assert response.headers["Location"] == location
        assert await error_code(response) == "BLOB_UPLOAD_INVALID"
    assert await upload_range(client, location) == "0-9"
    # The refused chunks left nothing behind: carrying on from the offset works.
    assert (await patch_chunk(client, location, data[10:], 10)).status == 202
    done = await client.put(location, params={"digest": sha256(data)})
    assert done.status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_a_second_writer_of_one_upload_is_told_to_retry(client: Client) -> None:
    """Two requests writing one upload at once (a client's retry racing its first attempt, or
    one that reached another replica): the second is told 429 + Retry-After -- which OCI clients
    retry -- not 416, which ends a push; the first finishes and the upload goes on."""
    data = data_of(64 * 1024, seed=9)
    location = await start_upload(client, "acme/llm")
    first_sent, go_on = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield data[:1024]
        first_sent.set()
        await go_on.wait()
        yield data[1024:]

    first = asyncio.ensure_future(
        client.patch(location, data=slow_body(), headers={"Content-Type": "application/octet-stream"})
    )
    await asyncio.wait_for(first_sent.wait(), 10)
    await asyncio.sleep(0.2)  # the first request holds the upload's writer now
    second = await patch_chunk(client, location, data, 0)
    assert second.status == 429, await second.text()
    assert await error_code(second) == "TOOMANYREQUESTS"
    assert 1 <= int(second.headers["Retry-After"]) <= 31
    go_on.set()
    assert (await first).status == 202
    assert await upload_range(client, location) == f"0-{len(data) - 1}"
    done = await client.put(location, params={"digest": sha256(data)})
    assert done.status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_first_chunk_must_start_at_zero(client: Client) -> None:
    location = await start_upload(client, "acme/llm")
    response = await patch_chunk(client, location, b"abc", 1)
    assert response.status == 416
    assert response.headers["Range"] == "0-0"
    assert await error_code(response) == "BLOB_UPLOAD_INVALID"


async def test_closing_put_with_out_of_order_final_chunk_is_416(client: Client) -> None:
    data = data_of(20, seed=8)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:10], 0)).status == 202
    response = await client.put(
        location, params={"digest": sha256(data)}, data=data[12:], headers={"Content-Range": "12-19"}
    )
    assert response.status == 416
    assert response.headers["Range"] == "0-9"
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(data)}")).status == 404
    assert await upload_range(client, location) == "0-9"


async def test_malformed_content_range_is_refused_without_effect(client: Client) -> None:
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, b"0123456789", 0)).status == 202
    for value in ("bytes=ten-twenty", "10", "19-10"):
        response = await client.patch(location, data=b"0123456789", headers={"Content-Range": value})
        assert response.status in (400, 416), value
        assert await error_code(response) == "BLOB_UPLOAD_INVALID", value
    assert await upload_range(client, location) == "0-9"


async def test_content_range_length_mismatch_is_size_invalid_and_offset_unchanged(client: Client) -> None:
    data = data_of(200, seed=9)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:100], 0)).status == 202
    # Announces 100 bytes (100-199) but sends 50.
    response = await client.patch(location, data=data[100:150], headers={"Content-Range": "100-199"})
    assert response.status == 400
    assert await error_code(response) == "SIZE_INVALID"
    assert await upload_range(client, location) == "0-99"
    # The 50 bytes were discarded: the right chunk from byte 100 makes the exact blob.
    assert (await patch_chunk(client, location, data[100:], 100)).status == 202
    done = await client.put(location, params={"digest": sha256(data)})
    assert done.status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_body_longer_than_content_range_is_size_invalid(client: Client) -> None:
    data = data_of(40, seed=16)
    location = await start_upload(client, "acme/llm")
    response = await client.patch(location, data=data, headers={"Content-Range": "0-19"})
    assert response.status == 400
    assert await error_code(response) == "SIZE_INVALID"
    assert await upload_range(client, location) == "0-0"
    assert (await patch_chunk(client, location, data, 0)).status == 202
    assert (await client.put(location, params={"digest": sha256(data)})).status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_stalled_chunk_is_discarded_and_the_upload_resumes(make_client: ClientFactory) -> None:
    client = await make_client(upload_idle_timeout=0.3)
    data = data_of(300, seed=17)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:100], 0)).status == 202

    async def stalls() -> AsyncIterator[bytes]:
        yield data[100:150]
        await asyncio.sleep(1.5)
        yield data[150:200]

    response = await client.patch(location, data=stalls())
    assert response.status == 408
    assert await error_code(response) == "BLOB_UPLOAD_INVALID"
    # The 50 bytes that did arrive were cut away: the session is where the client last heard.
    assert await upload_range(client, location) == "0-99"
    assert (await patch_chunk(client, location, data[100:], 100)).status == 202
    assert (await client.put(location, params={"digest": sha256(data)})).status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_multi_batch_upload_is_byte_exact(client: Client) -> None:
    """Bodies larger than the service's ~1 MiB write batches, streamed and chunked."""
    data = data_of(3 * MiB + 4321, seed=10)
    location = await start_upload(client, "acme/big")
    # One streamed PATCH of 2 MiB + 100 in odd-sized pieces, then a 1 MiB+ chunk with Content-Range.
    head = data[: 2 * MiB + 100]
    pieces = [head[i : i + 300_001] for i in range(0, len(head), 300_001)]
    response = await client.patch(location, data=stream(pieces))
    assert response.status == 202, await response.text()
    assert response.headers["Range"] == f"0-{len(head) - 1}"
    response = await patch_chunk(client, location, data[len(head) :], len(head))
    assert response.status == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    done = await client.put(location, params={"digest": sha256(data)})
    assert done.status == 201
    await assert_blob(client, "acme/big", sha256(data), data)


async def test_monolithic_multi_batch_upload_is_byte_exact(client: Client) -> None:
    data = data_of(3 * MiB + 17, seed=11)
    digest = await push_blob(client, "acme/big", data)
    response = await client.head(f"/v2/acme/big/blobs/{digest}")
    assert response.headers["Content-Length"] == str(len(data))
    await assert_blob(client, "acme/big", digest, data)


async def test_concurrent_uploads_of_the_same_blob(client: Client) -> None:
    data = data_of(200_000, seed=18)

    async def post_then_put() -> int:
        location = await start_upload(client, "acme/llm")
        return (await client.put(location, params={"digest": sha256(data)}, data=data)).status

    async def single_post() -> int:
        response = await client.post("/v2/acme/llm/blobs/uploads/", params={"digest": sha256(data)}, data=data)
        return response.status

    statuses = await asyncio.gather(*[post_then_put() for _ in range(6)], *[single_post() for _ in range(6)])
    assert statuses == [201] * 12
    await assert_blob(client, "acme/llm", sha256(data), data)


# -- commit ------------------------------------------------------------------------------------


async def test_wrong_digest_keeps_the_session_usable(client: Client) -> None:
    data = data_of(1000, seed=12)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data, 0)).status == 202
    wrong = await client.put(location, params={"digest": sha256(b"not it")})
    assert wrong.status == 400
    assert await error_code(wrong) == "DIGEST_INVALID"
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(b'not it')}")).status == 404
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(data)}")).status == 404
    assert await upload_range(client, location) == "0-999"
    right = await client.put(location, params={"digest": sha256(data)})
    assert right.status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_wrong_digest_with_final_chunk_loses_nothing(client: Client) -> None:
    data = data_of(1500, seed=13)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:1000], 0)).status == 202
    wrong = await client.put(
        location, params={"digest": sha256(b"not it")}, data=data[1000:], headers={"Content-Range": "1000-1499"}
    )
    assert wrong.status == 400
    assert await error_code(wrong) == "DIGEST_INVALID"
    # The final chunk was received before the digest was checked; it is kept.
    assert await upload_range(client, location) == "0-1499"
    right = await client.put(location, params={"digest": sha256(data)})
    assert right.status == 201
    await assert_blob(client, "acme/llm", sha256(data), data)


async def test_put_without_digest_is_refused_and_session_kept(client: Client) -> None:
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, b"abc", 0)).status == 202
    for params in ({}, {"digest": ""}, {"digest": "sha256:nothex"}):
        response = await client.put(location, params=params)
        assert response.status == 400, params
        assert await error_code(response) == "DIGEST_INVALID", params
    assert await upload_range(client, location) == "0-2"
    assert (await client.put(location, params={"digest": sha256(b"abc")})).status == 201


async def test_sha512_digest_commit(client: Client) -> None:
    data = data_of(5000, seed=14)
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, data[:3000], 0)).status == 202
    wrong = await client.put(location, params={"digest": sha512(b"no")}, data=data[3000:])
    assert wrong.status == 400
    assert await error_code(wrong) == "DIGEST_INVALID"
    done = await client.put(location, params={"digest": sha512(data)})
    assert done.status == 201, await done.text()
    assert done.headers["Docker-Content-Digest"] == sha512(data)
    assert done.headers["Location"] == f"/v2/acme/llm/blobs/{sha512(data)}"
    await assert_blob(client, "acme/llm", sha512(data), data)
    single = await client.post("/v2/acme/other/blobs/uploads/", params={"digest": sha512(b"x")}, data=b"x")
    assert single.status == 201
    await assert_blob(client, "acme/other", sha512(b"x"), b"x")


# -- cancel, unknown and foreign sessions ---------------------------------------------------------


async def test_cancel_upload(client: Client) -> None:
    location = await start_upload(client, "acme/llm")
    assert (await patch_chunk(client, location, b"abc", 0)).status == 202
    cancelled = await client.delete(location)
    assert cancelled.status == 204
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.request(method, location, params={"digest": sha256(b"abc")}, data=b"")
        assert response.status == 404, method
        assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN", method
    assert (await client.head(f"/v2/acme/llm/blobs/{sha256(b'abc')}")).status == 404


async def test_upload_id_is_bound_to_its_repository(client: Client) -> None:
    location = await start_upload(client, "team-a/model")
    assert (await patch_chunk(client, location, b"abc", 0)).status == 202
    foreign = location.replace("/v2/team-a/model/", "/v2/team-b/model/")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.request(method, foreign, params={"digest": sha256(b"abc")}, data=b"zzz")
        assert response.status == 404, method
        assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN", method
    # The session in its own repository is untouched by all of that.
    assert await upload_range(client, location) == "0-2"
    assert (await client.put(location, params={"digest": sha256(b"abc")})).status == 201
    assert (await client.head(f"/v2/team-b/model/blobs/{sha256(b'abc')}")).status == 404


async def test_unknown_or_malformed_upload_id_is_404(client: Client) -> None:
    await start_upload(client, "acme/llm")
    for upload_id in ("not-a-uuid", str(uuid.uuid4()), "..", "%2e%2e", "0" * 200):
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            # Sent raw, so that ``..`` reaches the server instead of being resolved by the client.
            response = await raw_request(
                client, method, f"/v2/acme/llm/blobs/uploads/{upload_id}?digest={sha256(b'')}", data=b""
            )
            assert response.status == 404, (method, upload_id)
            assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN", (method, upload_id)


# -- cross-repository mount ------------------------------------------------------------------------


async def test_mount_from_repository_holding_the_blob_is_201(client: Client) -> None:
    data = b"shared base layer"
    digest = await push_blob(client, "team-a/base", data)
    response = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": digest, "from": "team-a/base"})
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/team-b/app/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    await assert_blob(client, "team-b/app", digest, data)


async def test_mount_when_source_lacks_the_blob_starts_a_session(client: Client) -> None:
    data = b"only in team-a"
    digest = await push_blob(client, "team-a/base", data)
    response = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": digest, "from": "team-c/empty"})
    assert response.status == 202
    location = response.headers["Location"]
    assert location.startswith("/v2/team-b/app/blobs/uploads/")
    uuid.UUID(upload_id_of(location))
    # Not mounted: the blob is still unknown in team-b/app ...
    assert (await client.head(f"/v2/team-b/app/blobs/{digest}")).status == 404
    # ... and the session it opened is a working upload.
    done = await client.put(location, params={"digest": digest}, data=data)
    assert done.status == 201
    await assert_blob(client, "team-b/app", digest, data)


async def test_mount_of_unknown_blob_starts_a_session(client: Client) -> None:
    response = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": unknown_digest(), "from": "x/y"})
    assert response.status == 202
    assert (await client.get(response.headers["Location"])).status == 204


async def test_mount_without_from_for_a_known_blob_is_201(client: Client) -> None:
    data = b"known somewhere"
    digest = await push_blob(client, "team-a/base", data)
    response = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": digest})
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == digest
    await assert_blob(client, "team-b/app", digest, data)


async def test_mount_with_invalid_arguments_is_400(client: Client) -> None:
    digest = await push_blob(client, "team-a/base", b"x")
    response = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": "sha256:bad", "from": "team-a/base"})
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    response = await client.post("/v2/team-b/app/blobs/uploads/", params={"mount": digest, "from": "Team-A/../base"})
    assert response.status == 400
    assert await error_code(response) == "NAME_INVALID"


async def test_a_request_cancelled_while_its_upload_opens_releases_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client hangs up while the server is still opening the upload's writer (the test server,
    like a shutdown, cancels the handler): the writer the thread then hands over is closed, so its
    lock does not outlive the request and the client's retry is served, not told 429 for good."""
    opened = asyncio.Event()
    loop = asyncio.get_running_loop()
    for store_class in (FilesystemBlobStore, S3BlobStore):
        original = store_class.open_upload

        def slow_open(self: Any, upload_id: str, offset: int, _original: Any = original) -> Any:
            loop.call_soon_threadsafe(opened.set)
            time.sleep(0.5)
            return _original(self, upload_id, offset)

        monkeypatch.setattr(store_class, "open_upload", slow_open)
    data = data_of(64 * 1024, seed=21)
    location = await start_upload(client, "acme/llm")
    url = URL(location)
    assert client.port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        f"PATCH {url.raw_path} HTTP/1.1\r\nHost: registry\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data[:1000]
    )
    await writer.drain()
    await asyncio.wait_for(opened.wait(), 10)
    writer.close()  # gone while the writer is being opened
    await asyncio.sleep(1.0)  # the open finishes in its thread
    monkeypatch.undo()
    response = await patch_chunk(client, location, data, 0)
    assert response.status == 202, await response.text()
    assert (await client.put(location, params={"digest": sha256(data)})).status == 201
