"""Blob downloads from an object store: a 307 to a presigned URL by default, or streamed.

On the suite's PostgreSQL and the moto S3 server (``tests/s3.py``); the streamed mode runs the
whole of ``test_blobs.py`` too (``tests/backends.py``).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from modelyard.api.oci.common import REGISTRY
from modelyard.bootstrap import open_blob_store
from modelyard.domain.digest import Digest
from modelyard.storage.s3 import S3Options
from tests.backends import s3_settings
from tests.conftest import ClientFactory
from tests.helpers import error_code, push_blob

pytestmark = pytest.mark.postgres
Client = TestClient[Any, Any]
DATA = os.urandom(300_000)


@pytest.fixture
async def s3_client(make_client: ClientFactory, s3_options: S3Options, postgres_url: str) -> Client:
    return await make_client(database_url=postgres_url, **s3_settings(s3_options, blob_redirect_ttl=60))


async def test_get_redirects_to_a_short_lived_url_that_serves_the_blob_and_ranges(s3_client: Client) -> None:
    digest = await push_blob(s3_client, "acme/llm", DATA)
    response = await s3_client.get(f"/v2/acme/llm/blobs/{digest}", allow_redirects=False)
    assert response.status == 307
    assert response.headers["Docker-Content-Digest"] == digest
    location = response.headers["Location"]
    assert "X-Amz-Expires=60&" in location
    # What every OCI client does next: fetch the object straight from S3, whole or by range.
    assert httpx.get(location).content == DATA
    ranged = httpx.get(location, headers={"Range": "bytes=1000-1999"})
    assert (ranged.status_code, ranged.content) == (206, DATA[1000:2000])
    followed = await s3_client.get(f"/v2/acme/llm/blobs/{digest}")  # aiohttp follows it as well
    assert await followed.read() == DATA


async def test_head_is_answered_by_the_registry_and_unknown_blobs_never_redirect(s3_client: Client) -> None:
    digest = await push_blob(s3_client, "acme/llm", DATA)
    head = await s3_client.head(f"/v2/acme/llm/blobs/{digest}", allow_redirects=False)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(DATA))
    elsewhere = await s3_client.get(f"/v2/acme/other/blobs/{digest}", allow_redirects=False)
    assert elsewhere.status == 404
    assert await error_code(elsewhere) == "BLOB_UNKNOWN"


async def test_streamed_blob_whose_bytes_vanished_is_blob_unknown_not_a_broken_answer(
    make_client: ClientFactory, s3_options: S3Options, postgres_url: str
) -> None:
    client = await make_client(database_url=postgres_url, **s3_settings(s3_options, blob_redirect=False))
    digest = await push_blob(client, "acme/llm", DATA)
    open_blob_store(client.app[REGISTRY].settings).delete(Digest.parse(digest))  # lost outside the registry
    response = await client.get(f"/v2/acme/llm/blobs/{digest}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"
