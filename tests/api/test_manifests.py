"""``/v2/<name>/manifests/<reference>``: push, pull, HEAD, delete and content negotiation for the
four manifest kinds (OCI manifest and index, Docker schema-2 manifest and manifest list)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp.test_utils import TestClient

from modelyard.api.oci.common import REGISTRY
from modelyard.bootstrap import open_metadata
from tests.api.support import unknown_digest
from tests.conftest import ClientFactory
from tests.helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    error_code,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    sha256,
)

Client = TestClient[Any, Any]

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


async def put_manifest(client: Client, repo: str, reference: str, body: bytes, content_type: str | None) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return await client.put(f"/v2/{repo}/manifests/{reference}", data=body, headers=headers)


async def push_platform_images(client: Client, repo: str, *, docker: bool) -> list[tuple[bytes, dict[str, str]]]:
    """Two single-platform images pushed by digest; returns (body, platform) pairs for an index."""
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    extra: dict[str, Any] = {"config_type": DOCKER_CONFIG, "layer_type": DOCKER_LAYER} if docker else {}
    children = []
    for platform in (AMD64, ARM64):
        config = json.dumps({"architecture": platform["architecture"], "os": "linux"}).encode()
        layer = f"layer for {platform['architecture']}".encode()
        for blob in (config, layer):
            await push_blob(client, repo, blob)
        body = image_manifest(config, [layer], media_type=media_type, **extra)
        response = await put_manifest(client, repo, sha256(body), body, media_type)
        assert response.status == 201, await response.text()
        children.append((body, platform))
    return children


# -- push ------------------------------------------------------------------------------------------


async def test_put_by_tag_answers_201_with_location_and_digest(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    await push_blob(client, "acme/llm", b"weights")
    body = image_manifest(b"{}", [b"weights"])
    response = await put_manifest(client, "acme/llm", "v1", body, OCI_MANIFEST)
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert response.headers["Location"] == f"/v2/acme/llm/manifests/{sha256(body)}"
    assert "OCI-Subject" not in response.headers
    pulled = await client.get(response.headers["Location"])
    assert await pulled.read() == body


async def test_put_by_digest_answers_201_and_is_not_tagged(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    body = image_manifest(b"{}", [])
    response = await put_manifest(client, "acme/llm", sha256(body), body, OCI_MANIFEST)
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert response.headers["Location"] == f"/v2/acme/llm/manifests/{sha256(body)}"
    tags = await client.get("/v2/acme/llm/tags/list")
    assert (await tags.json())["tags"] == []


async def test_put_by_sha512_digest(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    body = image_manifest(b"{}", [])
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    response = await put_manifest(client, "acme/llm", digest, body, OCI_MANIFEST)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == digest
    pulled = await client.get(f"/v2/acme/llm/manifests/{digest}")
    assert pulled.status == 200
    assert pulled.headers["Docker-Content-Digest"] == digest
    assert await pulled.read() == body


async def test_pushing_the_same_manifest_twice_is_idempotent(client: Client) -> None:
    first = await push_image(client, "acme/llm", "v1")
    again = await put_manifest(client, "acme/llm", "v1", first.body, OCI_MANIFEST)
    assert again.status == 201
    assert again.headers["Docker-Content-Digest"] == first.digest
    assert (await (await client.get("/v2/acme/llm/tags/list")).json())["tags"] == ["v1"]


# -- pull -------------------------------------------------------------------------------------------


async def test_get_and_head_by_tag_and_digest(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    for reference in ("v1", pushed.digest):
        got = await client.get(f"/v2/acme/llm/manifests/{reference}")
        assert got.status == 200, reference
        assert await got.read() == pushed.body
        assert got.headers["Content-Type"] == OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == pushed.digest
        assert got.headers["Content-Length"] == str(len(pushed.body))
        head = await client.head(f"/v2/acme/llm/manifests/{reference}")
        assert head.status == 200, reference
        assert head.headers["Content-Length"] == str(len(pushed.body))
        assert head.headers["Content-Type"] == OCI_MANIFEST
        assert head.headers["Docker-Content-Digest"] == pushed.digest
        assert await head.read() == b""


async def test_manifest_bytes_are_stored_exactly_as_pushed(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    # Odd whitespace and key order must survive untouched: the digest is of these bytes.
    body = (
        b'{\n  "mediaType": "' + OCI_MANIFEST.encode() + b'",   "schemaVersion" : 2,\n'
        b'  "layers": [], "config": ' + json.dumps(descriptor(OCI_CONFIG, b"{}")).encode() + b"}\n"
    )
    response = await put_manifest(client, "acme/llm", "odd", body, OCI_MANIFEST)
    assert response.status == 201, await response.text()
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert await (await client.get("/v2/acme/llm/manifests/odd")).read() == body


async def test_oci_index_round_trip(client: Client) -> None:
    children = await push_platform_images(client, "acme/multi", docker=False)
    body = index_manifest(children)
    response = await put_manifest(client, "acme/multi", "latest", body, OCI_INDEX)
    assert response.status == 201, await response.text()
    got = await client.get("/v2/acme/multi/manifests/latest")
    assert got.headers["Content-Type"] == OCI_INDEX
    assert got.headers["Docker-Content-Digest"] == sha256(body)
    assert await got.read() == body


async def test_docker_schema2_manifest_round_trip(client: Client) -> None:
    pushed = await push_image(
        client,
        "acme/docker",
        "v1",
        media_type=DOCKER_MANIFEST,
        config_type=DOCKER_CONFIG,
        layer_type=DOCKER_LAYER,
    )
    got = await client.get("/v2/acme/docker/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert got.status == 200
    assert got.headers["Content-Type"] == DOCKER_MANIFEST
    assert got.headers["Docker-Content-Digest"] == pushed.digest
    assert await got.read() == pushed.body


async def test_docker_manifest_list_round_trip(client: Client) -> None:
    children = await push_platform_images(client, "acme/docker", docker=True)
    body = index_manifest(children, media_type=DOCKER_LIST)
    response = await put_manifest(client, "acme/docker", "latest", body, DOCKER_LIST)
    assert response.status == 201, await response.text()
    got = await client.get("/v2/acme/docker/manifests/latest", headers={"Accept": DOCKER_LIST})
    assert got.headers["Content-Type"] == DOCKER_LIST
    assert got.headers["Docker-Content-Digest"] == sha256(body)
    assert await got.read() == body


async def test_media_type_from_content_type_or_shape_when_field_missing(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    body = json.dumps({"schemaVersion": 2, "config": descriptor(OCI_CONFIG, b"{}"), "layers": []}).encode()
    for tag, content_type in (("typed", OCI_MANIFEST + "; charset=utf-8"), ("untyped", None)):
        response = await put_manifest(client, "acme/llm", tag, body, content_type)
        assert response.status == 201, (tag, await response.text())
        got = await client.get(f"/v2/acme/llm/manifests/{tag}")
        assert got.headers["Content-Type"] == OCI_MANIFEST, tag
        assert await got.read() == body


async def test_foreign_layers_need_not_be_pushed(client: Client) -> None:
    await push_blob(client, "acme/win", b"{}")
    foreign = descriptor(
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        b"windows base",
        urls=["https://example.invalid/base.tar.gz"],
    )
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, b"{}"),
            "layers": [foreign],
        }
    ).encode()
    response = await put_manifest(client, "acme/win", "ltsc", body, DOCKER_MANIFEST)
    assert response.status == 201, await response.text()


# -- refused pushes ----------------------------------------------------------------------------------


async def test_missing_blobs_are_manifest_blob_unknown_and_listed(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    await push_blob(client, "elsewhere/repo", b"layer in another repository")
    layers = [b"never pushed", b"layer in another repository"]
    body = image_manifest(b"{}", layers)
    response = await put_manifest(client, "acme/llm", "v1", body, OCI_MANIFEST)
    assert response.status == 400
    payload = await response.json()
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert payload["errors"][0]["detail"]["blobs"] == [sha256(layer) for layer in layers]
    assert sha256(b"never pushed") in payload["errors"][0]["message"]
    assert (await client.get("/v2/acme/llm/manifests/v1")).status == 404
    assert (await client.get(f"/v2/acme/llm/manifests/{sha256(body)}")).status == 404


async def test_missing_config_is_manifest_blob_unknown(client: Client) -> None:
    await push_blob(client, "acme/llm", b"weights")
    response = await put_manifest(client, "acme/llm", "v1", image_manifest(b"{}", [b"weights"]), OCI_MANIFEST)
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert (await response.json())["errors"][0]["detail"]["blobs"] == [sha256(b"{}")]


async def test_index_with_missing_child_is_manifest_blob_unknown(client: Client) -> None:
    children = await push_platform_images(client, "acme/multi", docker=False)
    ghost = image_manifest(b"{}", [b"ghost layer"])
    for media_type in (OCI_INDEX, DOCKER_LIST):
        body = index_manifest([*children, (ghost, ARM64)], media_type=media_type)
        response = await put_manifest(client, "acme/multi", "latest", body, media_type)
        assert response.status == 400, media_type
        assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"
        assert (await response.json())["errors"][0]["detail"]["manifests"] == [sha256(ghost)]
    assert (await client.get("/v2/acme/multi/manifests/latest")).status == 404


async def test_digest_mismatch_on_put_by_digest(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    body = image_manifest(b"{}", [])
    other = sha256(body + b" ")
    response = await put_manifest(client, "acme/llm", other, body, OCI_MANIFEST)
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    for reference in (other, sha256(body)):
        assert (await client.get(f"/v2/acme/llm/manifests/{reference}")).status == 404


async def test_invalid_manifests_are_manifest_invalid(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    config = descriptor(OCI_CONFIG, b"{}")
    cases: dict[str, tuple[bytes, str | None]] = {
        "not json": (b"{this is not json", OCI_MANIFEST),
        "empty body": (b"", OCI_MANIFEST),
        "json array": (b"[]", OCI_MANIFEST),
        "no schemaVersion": (json.dumps({"mediaType": OCI_MANIFEST, "config": config, "layers": []}).encode(), None),
        "schemaVersion 1": (
            json.dumps({"schemaVersion": 1, "mediaType": OCI_MANIFEST, "config": config, "layers": []}).encode(),
            OCI_MANIFEST,
        ),
        "no config": (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(), None),
        "no layers": (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config}).encode(), None),
        "index without manifests": (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(), OCI_INDEX),
        "descriptor without digest": (
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": OCI_CONFIG, "size": 2}}
            ).encode(),
            OCI_MANIFEST,
        ),
        "descriptor with bad digest": (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {**config, "digest": "sha256:xyz"},
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        "negative size": (
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {**config, "size": -1}, "layers": []}
            ).encode(),
            OCI_MANIFEST,
        ),
        "unsupported mediaType": (
            json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example+json", "layers": []}).encode(),
            "application/vnd.example+json",
        ),
        "unsupported Content-Type": (
            json.dumps({"schemaVersion": 2, "config": config, "layers": []}).encode(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        "Content-Type vs mediaType": (image_manifest(b"{}", []), DOCKER_MANIFEST),
        "index Content-Type on manifest": (image_manifest(b"{}", []), OCI_INDEX),
    }
    for name, (body, content_type) in cases.items():
        response = await put_manifest(client, "acme/llm", "bad", body, content_type)
        assert response.status == 400, (name, await response.text())
        assert await error_code(response) == "MANIFEST_INVALID", name
    assert (await client.get("/v2/acme/llm/manifests/bad")).status == 404


async def test_wrongly_typed_fields_are_manifest_invalid_naming_the_field(client: Client) -> None:
    """Types as the image spec declares them: lax coercion ("38" -> 38) let through manifests
    that clients then could not read."""
    await push_blob(client, "acme/llm", b"{}")
    await push_blob(client, "acme/llm", b"weights")
    good = json.loads(image_manifest(b"{}", [b"weights"]))
    config, layer = good["config"], good["layers"][0]
    child = {**descriptor(OCI_MANIFEST, b"child"), "platform": AMD64}

    def index(**entry: Any) -> dict[str, Any]:
        return {"schemaVersion": 2, "manifests": [{**child, **entry}]}

    cases: list[tuple[str, dict[str, Any], str]] = [
        ("config.size", {**good, "config": {**config, "size": "2"}}, OCI_MANIFEST),
        ("config.size", {**good, "config": {**config, "size": True}}, OCI_MANIFEST),
        ("config.size", {**good, "config": {**config, "size": 2.0}}, OCI_MANIFEST),
        ("layers.0.size", {**good, "layers": [{**layer, "size": 1e30}]}, OCI_MANIFEST),
        ("layers.0.size", {**good, "layers": [{**layer, "size": 2**63}]}, OCI_MANIFEST),
        ("schemaVersion", {**good, "schemaVersion": "2"}, OCI_MANIFEST),
        ("schemaVersion", {**good, "schemaVersion": 2.0}, OCI_MANIFEST),
        ("schemaVersion", {**good, "schemaVersion": True}, OCI_MANIFEST),
        ("config.mediaType", {**good, "config": {**config, "mediaType": 7}}, OCI_MANIFEST),
        ("config.mediaType", {**good, "config": {**config, "mediaType": "not a media type"}}, OCI_MANIFEST),
        ("layers.0.digest", {**good, "layers": [{**layer, "digest": ["sha256:x"]}]}, OCI_MANIFEST),
        ("annotations.a", {**good, "annotations": {"a": 1}}, OCI_MANIFEST),
        ("layers.0.annotations.b", {**good, "layers": [{**layer, "annotations": {"b": None}}]}, OCI_MANIFEST),
        ("layers.0.urls", {**good, "layers": [{**layer, "urls": "https://example.com/x"}]}, OCI_MANIFEST),
        ("layers.0.data", {**good, "layers": [{**layer, "data": "not base64!"}]}, OCI_MANIFEST),
        ("artifactType", {**good, "artifactType": 5}, OCI_MANIFEST),
        ("layers", {**good, "layers": {"0": layer}}, OCI_MANIFEST),
        ("manifests.0.size", index(size="5"), OCI_INDEX),
        ("manifests.0.platform.architecture", index(platform={"os": "linux"}), OCI_INDEX),
        ("manifests.0.platform.os.features", index(platform={**AMD64, "os.features": "x"}), OCI_INDEX),
    ]  # fmt: skip
    for field, body, media_type in cases:
        response = await put_manifest(client, "acme/llm", "bad", json.dumps(body).encode(), media_type)
        assert response.status == 400, (field, body)
        assert await error_code(response) == "MANIFEST_INVALID", field
        error = (await response.json())["errors"][0]
        assert error["message"].split(": ", 1)[1].startswith(f"{field}: "), (field, error["message"])
        assert error["detail"]["fields"][0] == field
    assert (await client.get("/v2/acme/llm/manifests/bad")).status == 404
    # The same manifest, correctly typed, is accepted (and a zero or int64-max size is a size).
    assert (await put_manifest(client, "acme/llm", "good", json.dumps(good).encode(), OCI_MANIFEST)).status == 201


async def test_oversized_manifest_is_413(make_client: ClientFactory) -> None:
    client = await make_client(manifest_max_bytes=2048)
    await push_blob(client, "acme/llm", b"{}")

    def manifest_of_size(size: int) -> bytes:
        base = image_manifest(b"{}", [], annotations={"pad": ""})
        return image_manifest(b"{}", [], annotations={"pad": "x" * (size - len(base))})

    at_limit = manifest_of_size(2048)
    assert len(at_limit) == 2048
    assert (await put_manifest(client, "acme/llm", "fits", at_limit, OCI_MANIFEST)).status == 201
    too_big = manifest_of_size(2049)
    response = await put_manifest(client, "acme/llm", "big", too_big, OCI_MANIFEST)
    assert response.status == 413
    assert await error_code(response) == "MANIFEST_INVALID"

    async def streamed() -> Any:  # no Content-Length: the limit holds while reading too
        for i in range(0, len(too_big), 500):
            yield too_big[i : i + 500]

    response = await client.put("/v2/acme/llm/manifests/big", data=streamed(), headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 413
    assert await error_code(response) == "MANIFEST_INVALID"
    assert (await client.get("/v2/acme/llm/manifests/big")).status == 404


async def test_subject_sets_oci_subject_and_need_not_exist(client: Client) -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": unknown_digest("subject"), "size": 123}
    await push_blob(client, "acme/llm", b"{}")
    body = image_manifest(b"{}", [], subject=subject, artifact_type="application/vnd.example.sbom")
    response = await put_manifest(client, "acme/llm", sha256(body), body, OCI_MANIFEST)
    assert response.status == 201, await response.text()
    assert response.headers["OCI-Subject"] == subject["digest"]
    assert (await client.get(f"/v2/acme/llm/manifests/{sha256(body)}")).status == 200


# -- delete --------------------------------------------------------------------------------------------


async def test_delete_tag_removes_only_that_tag(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    assert (await put_manifest(client, "acme/llm", "stable", pushed.body, OCI_MANIFEST)).status == 201
    response = await client.delete("/v2/acme/llm/manifests/v1")
    assert response.status == 202
    gone = await client.get("/v2/acme/llm/manifests/v1")
    assert gone.status == 404
    assert await error_code(gone) == "MANIFEST_UNKNOWN"
    assert await (await client.get(f"/v2/acme/llm/manifests/{pushed.digest}")).read() == pushed.body
    assert await (await client.get("/v2/acme/llm/manifests/stable")).read() == pushed.body
    assert (await (await client.get("/v2/acme/llm/tags/list")).json())["tags"] == ["stable"]
    again = await client.delete("/v2/acme/llm/manifests/v1")
    assert again.status == 404
    assert await error_code(again) == "MANIFEST_UNKNOWN"


async def test_delete_by_digest_removes_manifest_and_all_its_tags(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    other = await push_image(client, "acme/llm", "v2", layers=[b"other layer"])
    assert (await put_manifest(client, "acme/llm", "stable", pushed.body, OCI_MANIFEST)).status == 201
    response = await client.delete(f"/v2/acme/llm/manifests/{pushed.digest}")
    assert response.status == 202
    for reference in (pushed.digest, "v1", "stable"):
        gone = await client.get(f"/v2/acme/llm/manifests/{reference}")
        assert gone.status == 404, reference
        assert await error_code(gone) == "MANIFEST_UNKNOWN"
        assert (await client.head(f"/v2/acme/llm/manifests/{reference}")).status == 404
    assert (await (await client.get("/v2/acme/llm/tags/list")).json())["tags"] == ["v2"]
    assert (await client.get(f"/v2/acme/llm/manifests/{other.digest}")).status == 200
    again = await client.delete(f"/v2/acme/llm/manifests/{pushed.digest}")
    assert again.status == 404
    assert await error_code(again) == "MANIFEST_UNKNOWN"


async def test_deleting_a_manifest_an_index_lists_is_refused_until_the_index_goes(client: Client) -> None:
    children = await push_platform_images(client, "acme/multi", docker=False)
    index = index_manifest(children)
    assert (await put_manifest(client, "acme/multi", "latest", index, OCI_INDEX)).status == 201
    child = sha256(children[0][0])
    refused = await client.delete(f"/v2/acme/multi/manifests/{child}")
    assert refused.status == 409
    assert await error_code(refused) == "DENIED"
    error = (await refused.json())["errors"][0]
    assert sha256(index) in error["message"] and "delete the index first" in error["message"]
    assert error["detail"]["reason"] == "MANIFEST_REFERENCED"
    assert error["detail"]["indexes"] == [sha256(index)]
    # Nothing was lost: the index still pulls whole.
    assert (await client.get(f"/v2/acme/multi/manifests/{child}")).status == 200
    assert await (await client.get("/v2/acme/multi/manifests/latest")).read() == index
    # Untagging the index keeps it (and the refusal); deleting it by digest lifts the refusal.
    assert (await client.delete("/v2/acme/multi/manifests/latest")).status == 202
    assert (await client.delete(f"/v2/acme/multi/manifests/{child}")).status == 409
    assert (await client.delete(f"/v2/acme/multi/manifests/{sha256(index)}")).status == 202
    assert (await client.delete(f"/v2/acme/multi/manifests/{child}")).status == 202
    assert (await client.get(f"/v2/acme/multi/manifests/{child}")).status == 404


async def test_only_an_index_of_the_same_repository_holds_a_manifest(client: Client) -> None:
    children = await push_platform_images(client, "acme/multi", docker=True)
    assert await push_platform_images(client, "acme/copy", docker=True) == children
    index = index_manifest(children, media_type=DOCKER_LIST)
    assert (await put_manifest(client, "acme/multi", "latest", index, DOCKER_LIST)).status == 201
    child = sha256(children[0][0])
    assert (await client.delete(f"/v2/acme/multi/manifests/{child}")).status == 409
    assert (await client.delete(f"/v2/acme/copy/manifests/{child}")).status == 202


async def test_delete_disabled_is_405(make_client: ClientFactory) -> None:
    client = await make_client(delete_enabled=False)
    pushed = await push_image(client, "acme/llm", "v1")
    for reference in ("v1", pushed.digest):
        response = await client.delete(f"/v2/acme/llm/manifests/{reference}")
        assert response.status == 405, reference
        assert await error_code(response) == "UNSUPPORTED"
    assert (await client.get("/v2/acme/llm/manifests/v1")).status == 200


async def test_unknown_manifest_is_404_manifest_unknown(client: Client) -> None:
    await push_image(client, "acme/llm", "v1")
    for path in (
        "/v2/acme/llm/manifests/nope",
        f"/v2/acme/llm/manifests/{unknown_digest()}",
        "/v2/no/such-repo/manifests/v1",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        assert await error_code(response) == "MANIFEST_UNKNOWN", path
        head = await client.head(path)
        assert head.status == 404, path
        assert await head.read() == b""
        deleted = await client.delete(path)
        assert deleted.status == 404, path


# -- tags move, with history ----------------------------------------------------------------------------


async def test_moving_a_tag_keeps_history_and_the_old_manifest(client: Client) -> None:
    first = await push_image(client, "acme/llm", "prod", layers=[b"model v1"])
    second = await push_image(client, "acme/llm", "prod", layers=[b"model v2"])
    assert first.digest != second.digest
    got = await client.get("/v2/acme/llm/manifests/prod")
    assert got.headers["Docker-Content-Digest"] == second.digest
    assert await got.read() == second.body
    assert await (await client.get(f"/v2/acme/llm/manifests/{first.digest}")).read() == first.body
    assert (await (await client.get("/v2/acme/llm/tags/list")).json())["tags"] == ["prod"]

    metadata = open_metadata(client.app[REGISTRY].settings, migrate=False)
    try:
        history = metadata.tags.history("acme/llm", "prod")
    finally:
        metadata.close()
    assert [record.digest for record in history] == [second.digest, first.digest]
    assert history[0].end is None
    assert history[1].end is not None


async def test_concurrent_pushes_moving_one_tag(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    bodies = []
    for i in range(8):
        layer = f"layer {i}".encode()
        await push_blob(client, "acme/llm", layer)
        bodies.append(image_manifest(b"{}", [layer]))
    responses = await asyncio.gather(
        *[put_manifest(client, "acme/llm", "prod", body, OCI_MANIFEST) for body in bodies + bodies]
    )
    assert [r.status for r in responses] == [201] * 16
    current = (await client.get("/v2/acme/llm/manifests/prod")).headers["Docker-Content-Digest"]
    assert current in {sha256(body) for body in bodies}
    metadata = open_metadata(client.app[REGISTRY].settings, migrate=False)
    try:
        history = metadata.tags.history("acme/llm", "prod")
    finally:
        metadata.close()
    assert [record.digest for record in history if record.end is None] == [current]
    assert (await (await client.get("/v2/acme/llm/tags/list")).json())["tags"] == ["prod"]


# -- content negotiation and caching ----------------------------------------------------------------------


async def test_accept_excluding_the_type_is_manifest_unknown(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    for reference in ("v1", pushed.digest):
        response = await client.get(f"/v2/acme/llm/manifests/{reference}", headers={"Accept": DOCKER_MANIFEST})
        assert response.status == 404, reference
        assert await error_code(response) == "MANIFEST_UNKNOWN"
        assert (await response.json())["errors"][0]["detail"]["mediaType"] == OCI_MANIFEST


async def test_accept_forms_that_admit_the_type(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    for accept in (
        OCI_MANIFEST,
        f"{DOCKER_MANIFEST}, {OCI_MANIFEST}",
        f"{OCI_MANIFEST};q=0.9",
        "*/*",
        "application/*",
    ):
        response = await client.get("/v2/acme/llm/manifests/v1", headers={"Accept": accept})
        assert response.status == 200, accept
        assert response.headers["Docker-Content-Digest"] == pushed.digest


async def test_accept_given_as_several_header_lines(client: Client) -> None:
    """Docker and containerd send one ``Accept`` line per media type; all of them count."""
    children = await push_platform_images(client, "acme/docker", docker=True)
    body = index_manifest(children, media_type=DOCKER_LIST)
    assert (await put_manifest(client, "acme/docker", "latest", body, DOCKER_LIST)).status == 201
    accept_lines = [("Accept", DOCKER_MANIFEST), ("Accept", DOCKER_LIST), ("Accept", OCI_MANIFEST)]
    response = await client.get("/v2/acme/docker/manifests/latest", headers=accept_lines)
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == sha256(body)
    assert await response.read() == body


async def test_schema2_only_client_gets_the_linux_amd64_image_of_a_list(client: Client) -> None:
    children = await push_platform_images(client, "acme/docker", docker=True)
    body = index_manifest(list(reversed(children)), media_type=DOCKER_LIST)  # amd64 not first
    assert (await put_manifest(client, "acme/docker", "latest", body, DOCKER_LIST)).status == 201
    amd64 = next(child for child, platform in children if platform == AMD64)
    response = await client.get("/v2/acme/docker/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert response.status == 200
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == sha256(amd64)
    assert await response.read() == amd64
    head = await client.head("/v2/acme/docker/manifests/latest", headers={"Accept": DOCKER_MANIFEST})
    assert head.headers["Docker-Content-Digest"] == sha256(amd64)
    assert head.headers["Content-Length"] == str(len(amd64))


async def test_by_digest_the_registry_never_answers_another_manifest(client: Client) -> None:
    """A digest names exact bytes: no platform substitution when pulling a list by digest."""
    children = await push_platform_images(client, "acme/docker", docker=True)
    body = index_manifest(children, media_type=DOCKER_LIST)
    assert (await put_manifest(client, "acme/docker", sha256(body), body, DOCKER_LIST)).status == 201
    response = await client.get(f"/v2/acme/docker/manifests/{sha256(body)}", headers={"Accept": DOCKER_MANIFEST})
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    listed = await client.get(f"/v2/acme/docker/manifests/{sha256(body)}", headers={"Accept": DOCKER_LIST})
    assert listed.headers["Docker-Content-Digest"] == sha256(body)


async def test_if_none_match_with_the_etag_is_304(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    first = await client.get("/v2/acme/llm/manifests/v1")
    etag = first.headers["ETag"]
    assert pushed.digest in etag
    cached = await client.get("/v2/acme/llm/manifests/v1", headers={"If-None-Match": etag})
    assert cached.status == 304
    assert await cached.read() == b""
    assert cached.headers["Docker-Content-Digest"] == pushed.digest
    stale = await client.get("/v2/acme/llm/manifests/v1", headers={"If-None-Match": '"sha256:other"'})
    assert stale.status == 200
    assert await stale.read() == pushed.body
    for header in ("*", f'"sha256:other", {etag}', f"W/{etag}"):  # any, a list, a weak tag
        matched = await client.get("/v2/acme/llm/manifests/v1", headers={"If-None-Match": header})
        assert matched.status == 304, header


async def test_layers_of_any_media_type_are_accepted(client: Client) -> None:
    """Model artifacts use their own layer types; the registry does not care."""
    pushed = await push_image(
        client,
        "acme/model",
        "v1",
        layers=[b"safetensors bytes"],
        layer_type="application/vnd.cncf.model.weight.v1.raw",
        config_type="application/vnd.cncf.model.config.v1+json",
        artifact_type="application/vnd.cncf.model.manifest.v1+json",
    )
    got = await client.get("/v2/acme/model/manifests/v1")
    assert await got.read() == pushed.body
    assert OCI_LAYER not in pushed.body.decode()
