"""A chunked upload continues on another worker from the SHA-256 state saved with its session.

Two apps on one data directory stand for two workers (or replicas): each has its own memory,
so the second can only know the hash of the first chunk from the session row. That it does not
read the acknowledged bytes back is shown by changing them on disk between the chunks: the
commit still verifies against what the client sent. (In production nothing rewrites an
upload's acknowledged bytes; the change only makes a re-read visible.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from modelyard.storage.paths import sqlite_path, upload_path
from tests.conftest import ClientFactory
from tests.helpers import error_code, sha256

FIRST, SECOND = b"first chunk of the layer; ", b"second chunk."


async def two_workers(make_client: ClientFactory, tmp_path: Path) -> tuple[TestClient[Any, Any], TestClient[Any, Any]]:
    data_dir = tmp_path / "shared-data"
    first = await make_client(data_dir=data_dir)
    second = await make_client(data_dir=data_dir, database_url=f"sqlite:///{sqlite_path(data_dir)}")
    return first, second


async def test_another_worker_resumes_the_saved_hash(make_client: ClientFactory, tmp_path: Path) -> None:
    first, second = await two_workers(make_client, tmp_path)
    started = await first.post("/v2/acme/llm/blobs/uploads/")
    location, upload_id = started.headers["Location"], started.headers["Docker-Upload-UUID"]
    patched = await first.patch(location, data=FIRST, headers={"Content-Range": f"0-{len(FIRST) - 1}"})
    assert patched.status == 202

    scratch = upload_path((tmp_path / "shared-data").resolve(), upload_id)
    scratch.write_bytes(b"X" * len(FIRST))  # a re-read would hash these instead

    done = await second.put(location, params={"digest": sha256(FIRST + SECOND)}, data=SECOND,
                            headers={"Content-Range": f"{len(FIRST)}-{len(FIRST + SECOND) - 1}"})  # fmt: skip
    assert done.status == 201, await done.text()


async def test_without_a_saved_state_the_bytes_are_re_read(make_client: ClientFactory, tmp_path: Path) -> None:
    """The fallback (an upload from before the state was kept, or no OpenSSL interface)."""
    first, second = await two_workers(make_client, tmp_path)
    started = await first.post("/v2/acme/llm/blobs/uploads/")
    location, upload_id = started.headers["Location"], started.headers["Docker-Upload-UUID"]
    assert (await first.patch(location, data=FIRST)).status == 202
    with sqlite3.connect(sqlite_path(tmp_path / "shared-data")) as db:
        db.execute("UPDATE uploads SET hash_state = NULL WHERE id = ?", (upload_id,))

    done = await second.put(location, params={"digest": sha256(FIRST + SECOND)}, data=SECOND)
    assert done.status == 201, await done.text()
    mismatch = await first.post("/v2/acme/llm/blobs/uploads/")
    other = mismatch.headers["Location"]
    assert (await first.patch(other, data=FIRST)).status == 202
    wrong = await second.put(other, params={"digest": sha256(b"something else")}, data=SECOND)
    assert wrong.status == 400 and await error_code(wrong) == "DIGEST_INVALID"
