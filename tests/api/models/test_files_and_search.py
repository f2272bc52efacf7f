"""Per-file downloads (raw layers, uncompressed and gzip tar members; Range, If-Range, ETag, 304,
416) and search (every filter, pages) through the admin API, on models pushed through ``/v2``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.models.builders import (
    DOC_RAW,
    HF_CONFIG,
    README,
    WEIGHT_RAW,
    WEIGHT_TAR,
    Layer,
    gguf_file,
    llama_safetensors,
    modelpack_config,
    push_model,
    raw_file,
    tar_of,
)
from tests.helpers import push_image, sha256

Client = TestClient[Any, Any]
BIG = bytes(range(256)) * 40  # 10240 bytes


async def _push_files(client: Client) -> dict[str, Any]:
    members = {"weights/big.bin": BIG, "weights/small.txt": b"hello tar member\n"}
    plain = tar_of(members)
    zipped = tar_of({"docs/notes.md": b"# notes\n" + BIG}, gzip=True)
    layers = [
        raw_file(WEIGHT_RAW, "raw.bin", BIG),
        Layer(WEIGHT_TAR, plain, {}),
        Layer("application/vnd.cncf.model.doc.v1.tar+gzip", zipped, {}),
        raw_file(DOC_RAW, "README.md", README),
    ]
    await push_model(client, "acme/files", "v1", modelpack_config(), layers)
    return {"plain": plain, "zipped": zipped}


FILES = "/api/v1/repositories/acme/files/-/versions/v1/files"


@pytest.mark.parametrize(
    ("path", "content", "layer"),
    [
        ("raw.bin", BIG, 0),
        ("weights/big.bin", BIG, 1),
        ("weights/small.txt", b"hello tar member\n", 1),
        ("docs/notes.md", b"# notes\n" + BIG, 2),
    ],
)
async def test_one_file_whole_and_by_range(client: Client, path: str, content: bytes, layer: int) -> None:
    pushed = await _push_files(client)
    layer_bytes = [BIG, pushed["plain"], pushed["zipped"]][layer]
    etag = f'"{sha256(layer_bytes)}"'

    whole = await client.get(f"{FILES}/{path}")
    assert whole.status == 200, await whole.text()
    assert await whole.read() == content
    assert whole.headers["ETag"] == etag
    assert whole.headers["Content-Length"] == str(len(content))
    assert whole.headers["Accept-Ranges"] == "bytes"

    part = await client.get(f"{FILES}/{path}", headers={"Range": "bytes=3-9"})
    assert part.status == 206
    assert await part.read() == content[3:10]
    assert part.headers["Content-Range"] == f"bytes 3-9/{len(content)}"
    assert part.headers["ETag"] == etag

    tail = await client.get(f"{FILES}/{path}", headers={"Range": "bytes=-5"})
    assert tail.status == 206 and await tail.read() == content[-5:]
    open_ended = await client.get(f"{FILES}/{path}", headers={"Range": f"bytes={len(content) - 4}-"})
    assert open_ended.status == 206 and await open_ended.read() == content[-4:]

    beyond = await client.get(f"{FILES}/{path}", headers={"Range": f"bytes={len(content)}-"})
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(content)}"

    stale = await client.get(f"{FILES}/{path}", headers={"Range": "bytes=0-1", "If-Range": '"sha256:' + "0" * 64 + '"'})
    assert stale.status == 200 and await stale.read() == content
    current = await client.get(f"{FILES}/{path}", headers={"Range": "bytes=0-1", "If-Range": etag})
    assert current.status == 206 and await current.read() == content[:2]

    cached = await client.get(f"{FILES}/{path}", headers={"If-None-Match": etag})
    assert cached.status == 304


async def test_missing_file_and_unknown_version(client: Client) -> None:
    await _push_files(client)
    missing = await client.get(f"{FILES}/nope.bin")
    assert missing.status == 404 and (await missing.json())["errors"][0]["code"] == "NOT_FOUND"
    assert (await client.get("/api/v1/repositories/acme/files/-/versions/v9/files/raw.bin")).status == 404
    listed = await (await client.get(FILES)).json()
    assert [f["path"] for f in listed["items"]] == [
        "raw.bin", "weights/big.bin", "weights/small.txt", "docs/notes.md", "README.md",
    ]  # fmt: skip


async def _search(client: Client, **params: Any) -> list[str]:
    response = await client.get("/api/v1/models", params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    return [f"{item['repository']}:{','.join(item['tags'])}" for item in (await response.json())["items"]]


async def test_search_filters(client: Client, tmp_path: Path) -> None:
    await push_model(
        client,
        "acme/llama-st",
        "v1",
        modelpack_config(paramSize="8b"),
        [raw_file(WEIGHT_RAW, "model.safetensors", llama_safetensors()),
         raw_file("application/vnd.cncf.model.weight.config.v1.raw", "config.json", json.dumps(HF_CONFIG).encode())],
    )  # fmt: skip
    await push_model(
        client,
        "acme/llama-gguf",
        "q4",
        modelpack_config(descriptor={"name": "gguf", "licenses": ["MIT"]}),
        [raw_file(WEIGHT_RAW, "m.gguf", gguf_file(tmp_path / "m.gguf"))],
    )
    await push_model(
        client,
        "other/big",
        "v1",
        modelpack_config(architecture="qwen2", paramSize="70b", format="safetensors", quantization="awq",
                         descriptor={"name": "Big", "licenses": ["Apache-2.0"]}),
        [raw_file(WEIGHT_RAW, "w.bin", b"x")],
    )  # fmt: skip
    await push_image(client, "acme/app", "1")

    assert await _search(client, arch="llama") == ["acme/llama-gguf:q4", "acme/llama-st:v1"]
    assert await _search(client, arch="LLAMA", format="gguf") == ["acme/llama-gguf:q4"]
    assert await _search(client, quantization="int4") == ["acme/llama-gguf:q4"]
    assert await _search(client, quantization="q4_k_m") == ["acme/llama-gguf:q4"]
    assert await _search(client, quantization="awq") == ["other/big:v1"]
    assert await _search(client, license="apache-2.0") == ["other/big:v1", "acme/llama-st:v1"]
    assert await _search(client, license="mit") == ["acme/llama-gguf:q4"]
    assert await _search(client, min_params="1B") == ["other/big:v1"]
    assert await _search(client, max_params="5K", arch="llama") == ["acme/llama-gguf:q4", "acme/llama-st:v1"]
    assert await _search(client, min_params="4K", max_params="4.2k") == ["acme/llama-st:v1"]
    assert await _search(client, q="acme/llama") == ["acme/llama-gguf:q4", "acme/llama-st:v1"]
    assert await _search(client, q="big") == ["other/big:v1"]  # the model name
    assert len(await _search(client)) == 4

    bad = await client.get("/api/v1/models", params={"min_params": "lots"})
    assert bad.status == 422 and (await bad.json())["errors"][0]["detail"][0]["field"] == "min_params"
    assert (await client.get("/api/v1/models", params={"page": "x"})).status == 422

    seen: list[str] = []
    page: str | None = None
    while True:
        params = {"limit": "1", **({"page": page} if page else {})}
        body = await (await client.get("/api/v1/models", params=params)).json()
        seen += [item["repository"] for item in body["items"]]
        page = body["next_page"]
        if page is None:
            break
    assert seen == ["acme/app", "other/big", "acme/llama-gguf", "acme/llama-st"]


async def test_deleting_a_manifest_removes_its_version(client: Client) -> None:
    digest = await push_model(
        client, "acme/gone", "v1", modelpack_config(), [raw_file(WEIGHT_RAW, "model.safetensors", llama_safetensors())]
    )
    assert await _search(client, q="acme/gone") == ["acme/gone:v1"]
    assert (await client.delete(f"/v2/acme/gone/manifests/{digest}")).status == 202
    assert await _search(client, q="acme/gone") == []
