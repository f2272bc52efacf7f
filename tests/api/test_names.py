"""Names, tags and digests against the spec's grammar; the base endpoint; unknown endpoints and
wrong methods; path traversal; and the promise that no request, however odd, gets a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.support import ADMIN_PASSWORD, bearer_header, raw_request, start_upload, token, unknown_digest
from tests.conftest import ClientFactory
from tests.helpers import OCI_MANIFEST, error_code, image_manifest, push_blob, push_image, sha256

Client = TestClient[Any, Any]

DIGEST = sha256(b"some blob")

INVALID_NAMES = [
    "Acme/llm",  # upper case
    "acme/LLM",
    "acme/llm/",  # trailing slash
    "acme//llm",  # empty component
    "-acme/llm",
    "acme/llm-",
    "acme/.llm",
    "acme/l..m",  # '.' is a single separator
    "acme/l___m",  # '_' or '__', not three
    "acme/l_-m",
    "acme/l m",
    "acme/llm:v1",
    "acme/ll\u00e9m",
    "a" * 256,  # longer than 255
    "a/" * 127 + "ab",  # 256 with slashes
]
VALID_NAMES = ["a", "acme/llm", "a.b/c_d/e__f/g---h", "0/1/2", "a" * 255, "ab/" * 84 + "abc"]

INVALID_TAGS = [".hidden", "-dash", "t" * 129, "with space", "plus+sign", "sl\u00e4sh", "a@b", "a%b"]
# The last is the referrers tag schema (<alg>-<hex>) that clients fall back to.
VALID_TAGS = ["_under", "UPPER.case-1_2", "t" * 128, "1", "v1.0.0-rc.1_build", "sha256-" + "a" * 64]


def v2_endpoints(name: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("DELETE", f"/v2/{name}/manifests/latest"),
        ("GET", f"/v2/{name}/blobs/{DIGEST}"),
        ("DELETE", f"/v2/{name}/blobs/{DIGEST}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("GET", f"/v2/{name}/referrers/{DIGEST}"),
    ]


# -- base endpoint, unknown endpoints, wrong methods ---------------------------------------------------


async def test_base_endpoint(client: Client) -> None:
    for path in ("/v2/", "/v2"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert await response.json() == {}


async def test_unknown_endpoints_are_404_with_json_error_body(client: Client) -> None:
    for path in (
        "/v2/acme/llm/unknown",
        "/v2/acme/llm/manifests/",
        "/v2/acme/llm/blobs/",
        "/v2/acme/llm/tags",
        "/v2/_catalog/more",
        "/v3/",
        "/favicon.ico",
    ):
        response = await client.get(path)
        assert response.status == 404, path
        assert response.headers["Content-Type"].startswith("application/json"), path
        assert await error_code(response) == "UNSUPPORTED", path


async def test_wrong_method_is_405_unsupported_with_allow(client: Client) -> None:
    cases = {
        ("POST", "/v2/"): {"GET", "HEAD"},
        ("DELETE", "/v2/_catalog"): {"GET"},
        ("PUT", "/v2/acme/llm/tags/list"): {"GET"},
        ("POST", "/v2/acme/llm/referrers/" + DIGEST): {"GET"},
        ("PATCH", "/v2/acme/llm/manifests/latest"): {"GET", "HEAD", "PUT", "DELETE"},
        ("POST", "/v2/acme/llm/manifests/latest"): {"GET", "HEAD", "PUT", "DELETE"},
        ("PUT", f"/v2/acme/llm/blobs/{DIGEST}"): {"GET", "HEAD", "DELETE"},
        ("PATCH", f"/v2/acme/llm/blobs/{DIGEST}"): {"GET", "HEAD", "DELETE"},
        ("GET", "/v2/acme/llm/blobs/uploads/"): {"POST"},
        ("POST", "/v2/acme/llm/blobs/uploads/0b5a4a36-93de-4c37-8f03-d0a6d3ba2c2a"): {"GET", "PATCH", "PUT", "DELETE"},
    }
    for (method, path), allowed in cases.items():
        response = await client.request(method, path)
        assert response.status == 405, (method, path)
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed, (method, path)
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert await error_code(response) == "UNSUPPORTED", (method, path)


async def test_every_response_announces_the_api_version(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    location = await start_upload(client, "acme/llm")
    requests = [
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/acme/llm/tags/list"),
        ("GET", "/v2/acme/llm/manifests/v1"),
        ("HEAD", f"/v2/acme/llm/manifests/{pushed.digest}"),
        ("GET", f"/v2/acme/llm/blobs/{sha256(pushed.layers[0])}"),
        ("GET", f"/v2/acme/llm/referrers/{pushed.digest}"),
        ("GET", location),
        ("PATCH", location),
        ("POST", "/v2/acme/llm/blobs/uploads/"),
        ("GET", "/v2/acme/llm/manifests/missing"),
        ("GET", "/v2/NOPE/tags/list"),
        ("GET", "/v2/acme/llm/nowhere"),
        ("DELETE", location),
    ]
    for method, path in requests:
        response = await client.request(method, path)
        assert response.status < 500, (method, path)
        assert response.headers.get("Docker-Distribution-API-Version") == "registry/2.0", (method, path)


async def test_error_bodies_have_the_spec_shape(client: Client) -> None:
    response = await client.get(f"/v2/acme/llm/blobs/{DIGEST}")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")
    payload = await response.json()
    assert list(payload) == ["errors"]
    assert isinstance(payload["errors"], list)
    assert len(payload["errors"]) >= 1
    for entry in payload["errors"]:
        assert set(entry) <= {"code", "message", "detail"}
        assert entry["code"].replace("_", "").isalpha()
        assert entry["code"].isupper()
        assert isinstance(entry["message"], str)
        assert entry["message"]


# -- repository names ------------------------------------------------------------------------------------


async def test_invalid_names_are_name_invalid_on_every_endpoint(client: Client) -> None:
    for name in INVALID_NAMES:
        for method, path in v2_endpoints(name):
            response = await client.request(method, path)
            assert response.status == 400, (method, name)
            if method != "HEAD":
                assert await error_code(response) == "NAME_INVALID", (method, name)


async def test_valid_names_are_accepted(client: Client) -> None:
    for name in VALID_NAMES:
        pushed = await push_image(client, name, "v1")
        response = await client.get(f"/v2/{name}/manifests/v1")
        assert response.status == 200, name
        assert await response.read() == pushed.body
    catalog = await (await client.get("/v2/_catalog")).json()
    assert catalog["repositories"] == sorted(VALID_NAMES)


async def test_component_named_like_an_endpoint(client: Client) -> None:
    """``/v2/a/manifests/b/manifests/latest`` is tag ``latest`` of repository ``a/manifests/b``."""
    for name in ("a/manifests/b", "blobs/uploads", "x/tags/list", "referrers"):
        pushed = await push_image(client, name, "latest")
        response = await client.get(f"/v2/{name}/manifests/latest")
        assert response.status == 200, name
        assert await response.read() == pushed.body
        tags = await client.get(f"/v2/{name}/tags/list")
        assert await tags.json() == {"name": name, "tags": ["latest"]}


async def test_mount_from_an_invalid_name(client: Client) -> None:
    digest = await push_blob(client, "acme/base", b"x")
    response = await client.post("/v2/acme/llm/blobs/uploads/", params={"mount": digest, "from": "ACME/base"})
    assert response.status == 400
    assert await error_code(response) == "NAME_INVALID"


# -- tags -------------------------------------------------------------------------------------------------


async def test_invalid_tags_are_tag_invalid(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    for tag in INVALID_TAGS:
        put = await client.put(
            f"/v2/acme/llm/manifests/{tag}", data=pushed.body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert put.status == 400, tag
        assert await error_code(put) == "TAG_INVALID", tag
        deleted = await client.delete(f"/v2/acme/llm/manifests/{tag}")
        assert deleted.status == 400, tag
        assert await error_code(deleted) == "TAG_INVALID", tag
    # A reference with ':' is read as a digest: refused, as a bad one.
    put = await client.put("/v2/acme/llm/manifests/colon:x", data=pushed.body, headers={"Content-Type": OCI_MANIFEST})
    assert put.status == 400
    assert await error_code(put) == "DIGEST_INVALID"
    tags = await (await client.get("/v2/acme/llm/tags/list")).json()
    assert tags["tags"] == ["v1"]


async def test_reading_an_invalid_tag_is_manifest_unknown(make_client: ClientFactory) -> None:
    """Nothing can exist under an invalid reference, so a read is 404, as the conformance suite
    expects (with auth on too: the token asked for the repository is all it takes)."""
    for auth in (False, True):
        client = await make_client(auth_enabled=auth, admin_password=ADMIN_PASSWORD if auth else None)
        headers = (
            bearer_header(await token(client, ["repository:acme/llm:pull"], ("admin", ADMIN_PASSWORD))) if auth else {}
        )
        for tag in INVALID_TAGS:
            got = await client.get(f"/v2/acme/llm/manifests/{tag}", headers=headers)
            assert got.status == 404, (auth, tag)
            assert await error_code(got) == "MANIFEST_UNKNOWN", (auth, tag)
            head = await client.head(f"/v2/acme/llm/manifests/{tag}", headers=headers)
            assert head.status == 404, (auth, tag)


async def test_valid_tags_are_accepted(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    for tag in VALID_TAGS:
        put = await client.put(
            f"/v2/acme/llm/manifests/{tag}", data=pushed.body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert put.status == 201, tag
        got = await client.get(f"/v2/acme/llm/manifests/{tag}")
        assert await got.read() == pushed.body


# -- digests ----------------------------------------------------------------------------------------------


async def test_bad_digests_are_digest_invalid_everywhere(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    location = await start_upload(client, "acme/llm")
    bad_digests = [
        "sha256:123",
        "sha256:" + "g" * 64,
        "sha256:" + "A" * 64,
        "sha256:" + "0" * 65,
        "sha512:" + "0" * 64,
        "md5:" + "0" * 32,
        "sha256:",
        ":" + "0" * 64,
    ]
    for bad in bad_digests:
        requests = [
            ("GET", f"/v2/acme/llm/manifests/{bad}", {}),
            ("PUT", f"/v2/acme/llm/manifests/{bad}", {"data": pushed.body}),
            ("DELETE", f"/v2/acme/llm/manifests/{bad}", {}),
            ("GET", f"/v2/acme/llm/blobs/{bad}", {}),
            ("DELETE", f"/v2/acme/llm/blobs/{bad}", {}),
            ("GET", f"/v2/acme/llm/referrers/{bad}", {}),
            ("POST", "/v2/acme/llm/blobs/uploads/", {"params": {"digest": bad}}),
            ("POST", "/v2/acme/llm/blobs/uploads/", {"params": {"mount": bad, "from": "acme/llm"}}),
            ("PUT", location, {"params": {"digest": bad}}),
        ]
        for method, path, kwargs in requests:
            response = await client.request(method, path, **{"data": b"", **kwargs})
            assert response.status == 400, (method, path, bad)
            assert await error_code(response) == "DIGEST_INVALID", (method, path, bad)
    # The upload survived all those refusals.
    assert (await client.get(location)).status == 204


async def test_a_newline_in_a_name_tag_or_digest_is_the_invalid_code_not_a_404(client: Client) -> None:
    """``%0A`` used to fall through the route (its pattern's ``.`` stops at a newline)."""
    pushed = await push_image(client, "acme/llm", "v1")
    cases = [
        ("GET", "/v2/acme/llm%0A/tags/list", "NAME_INVALID"),
        ("GET", "/v2/acme%0Allm/manifests/v1", "NAME_INVALID"),
        ("POST", "/v2/acme/llm%0A/blobs/uploads/", "NAME_INVALID"),
        ("PUT", "/v2/acme/llm/manifests/v2%0A", "TAG_INVALID"),
        ("DELETE", "/v2/acme/llm/manifests/v1%0A", "TAG_INVALID"),
        ("GET", f"/v2/acme/llm/blobs/{pushed.digest}%0A", "DIGEST_INVALID"),
        ("GET", f"/v2/acme/llm/manifests/{pushed.digest}%0A", "DIGEST_INVALID"),
        ("GET", "/v2/acme/llm/blobs/sha256:%0A" + "a" * 63, "DIGEST_INVALID"),
        ("GET", f"/v2/acme/llm/referrers/{pushed.digest}%0A", "DIGEST_INVALID"),
    ]
    for method, path, code in cases:
        response = await raw_request(client, method, path, data=pushed.body, headers={"Content-Type": OCI_MANIFEST})
        assert response.status == 400, (method, path, response.status)
        assert await error_code(response) == code, (method, path)
    tags = await (await client.get("/v2/acme/llm/tags/list")).json()
    assert tags["tags"] == ["v1"]


# -- path traversal ---------------------------------------------------------------------------------------


async def test_path_traversal_is_name_invalid_or_404(client: Client) -> None:
    digest = await push_blob(client, "b", b"secret of repository b")
    await push_blob(client, "a/b", b"x")
    hex_part = digest.split(":")[1]
    attempts = [
        f"/v2/a/%2e%2e/b/blobs/{digest}",
        f"/v2/a/../b/blobs/{digest}",
        f"/v2/a/%2E%2E/b/blobs/{digest}",
        f"/v2/a/b/%2e%2e/%2e%2e/b/blobs/{digest}",
        f"/v2/..%2fb/blobs/{digest}",
        f"/v2/a%2f..%2f..%2fb/blobs/{digest}",
        "/v2/%2e%2e/%2e%2e/etc/passwd/manifests/latest",
        f"/v2/./b/blobs/{digest}",
        f"/v2/b/blobs/sha256:..%2f..%2f{hex_part}",
        "/v2/b/blobs/sha256%3a..%2f..%2fmodelyard.db",
        "/v2/b/blobs/uploads/..%2f..%2fmodelyard.db",
        "/v2/b/blobs/uploads/../../../modelyard.db",
        "/v2/b/manifests/..%2f..%2fmodelyard.db",
        "/v2/%2fetc/tags/list",
        "/v2//etc/tags/list",
    ]
    for path in attempts:
        for method in ("GET", "HEAD", "DELETE", "PUT", "PATCH"):
            response = await raw_request(client, method, path, data=b"")
            assert response.status in (400, 404, 405), (method, path, response.status)
            if method == "HEAD":
                continue
            code = await error_code(response)
            if response.status == 400:
                assert code in ("NAME_INVALID", "DIGEST_INVALID", "TAG_INVALID"), (method, path, code)
            if response.status == 405:
                assert code == "UNSUPPORTED", (method, path)
    # Nothing was deleted or written by any of that.
    kept = await client.get(f"/v2/b/blobs/{digest}")
    assert await kept.read() == b"secret of repository b"


# -- never a 500 -------------------------------------------------------------------------------------------


async def test_odd_requests_never_answer_500(client: Client) -> None:
    pushed = await push_image(client, "acme/llm", "v1")
    blob = await push_blob(client, "acme/llm", b"0123456789")
    location = await start_upload(client, "acme/llm")
    deep_json = b"[" * 50_000 + b"]" * 50_000
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v2/a/%00/tags/list", {}),
        ("GET", "/v2/a/%ff%fe/tags/list", {}),
        ("GET", "/v2/acme/llm/manifests/%00", {}),
        ("GET", f"/v2/acme/llm/blobs/{blob}%00", {}),
        ("GET", "/v2/_catalog?n=-0", {}),
        ("GET", "/v2/_catalog?n=1&last=%ff%00%e4%b8%ad", {}),
        ("GET", "/v2/acme/llm/tags/list?n=1&last=%00", {}),
        ("GET", "/v2/acme/llm/tags/list?n=&last=", {}),
        ("GET", f"/v2/acme/llm/referrers/{pushed.digest}?artifactType=%00%ff", {}),
        ("GET", "/v2/acme/llm/manifests/v1", {"headers": {"Accept": ",,;;==garbage/;q=x"}}),
        ("GET", "/v2/acme/llm/manifests/v1", {"headers": {"If-None-Match": "*"}}),
        ("GET", f"/v2/acme/llm/blobs/{blob}", {"headers": {"Range": "bytes=abc"}}),
        ("GET", f"/v2/acme/llm/blobs/{blob}", {"headers": {"Range": "bytes=0-1,3-4"}}),
        ("GET", f"/v2/acme/llm/blobs/{blob}", {"headers": {"Range": "bytes=99999999999999999999999-"}}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": deep_json, "headers": {"Content-Type": OCI_MANIFEST}}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "a/b"}}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": b"null", "headers": {"Content-Type": OCI_MANIFEST}}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": b'{"schemaVersion": 2, "mediaType": 5}'}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": b'{"schemaVersion": 1e400}'}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": b'{"schemaVersion": "2", "manifests": {}}'}),
        ("PUT", "/v2/acme/llm/manifests/x", {"data": b"{}", "headers": {"Content-Type": ";;;"}}),
        (
            "PUT",
            "/v2/acme/llm/manifests/x",
            {
                "data": json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "x", "digest": blob, "size": 10**30},
                        "layers": [{"mediaType": "x", "digest": blob, "size": 1.5}],
                        "annotations": {"a": 1},
                    }
                ).encode(),
            },
        ),
        ("PATCH", location, {"data": b"abc", "headers": {"Content-Range": "0-99999999999999999999999999"}}),
        (
            "PATCH",
            location,
            {"data": b"abc", "headers": {"Content-Range": "99999999999999999999999-99999999999999999999999"}},
        ),
        ("PATCH", location, {"data": b"abc", "headers": {"Content-Range": "bytes */3"}}),
        ("PUT", location, {"params": {"digest": sha256(b"")}, "headers": {"Content-Range": "7-9"}}),
        ("POST", "/v2/acme/llm/blobs/uploads/", {"params": {"mount": blob, "from": ""}}),
        ("POST", "/v2/acme/llm/blobs/uploads/", {"params": {"mount": "", "digest": ""}}),
        ("POST", "/v2/acme/llm/blobs/uploads/", {"params": {"digest": blob}, "data": b"wrong"}),
        ("DELETE", "/v2/acme/llm/blobs/uploads/", {}),
        ("OPTIONS", "/v2/", {}),
        ("GET", "/v2/" + "a/" * 2000 + "tags/list", {}),
    ]
    for method, path, kwargs in requests:
        response = await raw_request(client, method, path, **kwargs)
        assert response.status < 500, (method, path[:80], response.status, await response.text())
        if response.status >= 400 and method != "HEAD" and response.status != 416:
            await error_code(response)
    # The registry still works after all that.
    assert await (await client.get("/v2/acme/llm/manifests/v1")).read() == pushed.body
    location_status = await client.get(location)
    assert location_status.status == 204


async def test_manifest_with_a_subject_of_bad_digest_is_manifest_invalid(client: Client) -> None:
    await push_blob(client, "acme/llm", b"{}")
    subject = {"mediaType": OCI_MANIFEST, "digest": "sha256:nope", "size": 1}
    body = image_manifest(b"{}", [], subject=subject)
    response = await client.put("/v2/acme/llm/manifests/x", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_INVALID"


async def test_unknown_digest_with_sha512_is_404_not_400(client: Client) -> None:
    digest = "sha512:" + "0" * 128
    assert digest != unknown_digest()
    for path, code in (
        (f"/v2/acme/llm/blobs/{digest}", "BLOB_UNKNOWN"),
        (f"/v2/acme/llm/manifests/{digest}", "MANIFEST_UNKNOWN"),
    ):
        response = await client.get(path)
        assert response.status == 404, path
        assert await error_code(response) == code
