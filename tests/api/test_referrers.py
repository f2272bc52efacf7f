"""``GET /v2/<name>/referrers/<digest>``: the index of manifests whose ``subject`` is ``<digest>``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.support import unknown_digest
from tests.helpers import OCI_INDEX, OCI_MANIFEST, error_code, image_manifest, push_blob, push_image, sha256

Client = TestClient[Any, Any]

EMPTY = "application/vnd.oci.empty.v1+json"
SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"
EVAL_CONFIG = "application/vnd.example.eval.config.v1+json"


def subject_of(body: bytes) -> dict[str, Any]:
    return {"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body)}


async def push_referrer(
    client: Client,
    repo: str,
    subject: dict[str, Any],
    *,
    artifact_type: str | None = None,
    config_type: str = EMPTY,
    annotations: dict[str, str] | None = None,
    payload: bytes = b"artifact",
) -> bytes:
    await push_blob(client, repo, b"{}")
    await push_blob(client, repo, payload)
    body = image_manifest(
        b"{}",
        [payload],
        config_type=config_type,
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
    response = await client.put(
        f"/v2/{repo}/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status == 201, await response.text()
    assert response.headers["OCI-Subject"] == subject["digest"]
    return body


async def push_index_referrer(
    client: Client, repo: str, subject: dict[str, Any], artifact_type: str | None, annotations: dict[str, str]
) -> bytes:
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
        "subject": subject,
        "annotations": annotations,
    }
    if artifact_type is not None:
        index["artifactType"] = artifact_type
    body = json.dumps(index).encode()
    response = await client.put(f"/v2/{repo}/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_INDEX})
    assert response.status == 201, await response.text()
    assert response.headers["OCI-Subject"] == subject["digest"]
    return body


async def referrers(client: Client, repo: str, digest: str, **params: str) -> tuple[dict[str, Any], Any]:
    response = await client.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == OCI_INDEX
    payload = await response.json(content_type=None)
    assert payload["schemaVersion"] == 2
    assert payload["mediaType"] == OCI_INDEX
    return payload, response


async def test_referrers_index_has_artifact_types_and_annotations(client: Client) -> None:
    image = await push_image(client, "acme/llm", "v1")
    subject = subject_of(image.body)
    sbom = await push_referrer(
        client, "acme/llm", subject, artifact_type=SBOM, annotations={"org.example.sbom.format": "json"}
    )
    evaluation = await push_referrer(client, "acme/llm", subject, config_type=EVAL_CONFIG, payload=b"eval report")
    typed_index = await push_index_referrer(client, "acme/llm", subject, SIGNATURE, {"k": "v"})
    untyped_index = await push_index_referrer(client, "acme/llm", subject, None, {"created": "2025-01-01"})

    payload, response = await referrers(client, "acme/llm", image.digest)
    assert "OCI-Filters-Applied" not in response.headers
    by_digest = {entry["digest"]: entry for entry in payload["manifests"]}
    assert by_digest == {
        sha256(sbom): {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(sbom),
            "size": len(sbom),
            "artifactType": SBOM,
            "annotations": {"org.example.sbom.format": "json"},
        },
        # No artifactType in the manifest: the config's media type stands in.
        sha256(evaluation): {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(evaluation),
            "size": len(evaluation),
            "artifactType": EVAL_CONFIG,
        },
        sha256(typed_index): {
            "mediaType": OCI_INDEX,
            "digest": sha256(typed_index),
            "size": len(typed_index),
            "artifactType": SIGNATURE,
            "annotations": {"k": "v"},
        },
        # An index without artifactType has none.
        sha256(untyped_index): {
            "mediaType": OCI_INDEX,
            "digest": sha256(untyped_index),
            "size": len(untyped_index),
            "annotations": {"created": "2025-01-01"},
        },
    }
    assert len(payload["manifests"]) == 4


async def test_empty_artifact_type_falls_back_to_the_config_media_type(client: Client) -> None:
    image = await push_image(client, "acme/llm", "v1")
    body = await push_referrer(client, "acme/llm", subject_of(image.body), artifact_type="", config_type=EVAL_CONFIG)
    payload, _ = await referrers(client, "acme/llm", image.digest)
    assert [(e["digest"], e["artifactType"]) for e in payload["manifests"]] == [(sha256(body), EVAL_CONFIG)]
    # An index with an empty artifactType has none.
    index = await push_index_referrer(client, "acme/llm", subject_of(image.body), "", {"a": "b"})
    payload, _ = await referrers(client, "acme/llm", image.digest)
    entry = next(e for e in payload["manifests"] if e["digest"] == sha256(index))
    assert "artifactType" not in entry


async def test_artifact_type_filter(client: Client) -> None:
    image = await push_image(client, "acme/llm", "v1")
    subject = subject_of(image.body)
    sbom = await push_referrer(client, "acme/llm", subject, artifact_type=SBOM)
    await push_referrer(client, "acme/llm", subject, artifact_type=SIGNATURE, payload=b"sig")
    await push_referrer(client, "acme/llm", subject, config_type=EVAL_CONFIG, payload=b"eval")

    payload, response = await referrers(client, "acme/llm", image.digest, artifactType=SBOM)
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [entry["digest"] for entry in payload["manifests"]] == [sha256(sbom)]

    payload, response = await referrers(client, "acme/llm", image.digest, artifactType=EVAL_CONFIG)
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [entry["artifactType"] for entry in payload["manifests"]] == [EVAL_CONFIG]

    payload, response = await referrers(client, "acme/llm", image.digest, artifactType="application/vnd.none")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert payload["manifests"] == []

    payload, _ = await referrers(client, "acme/llm", image.digest)
    assert len(payload["manifests"]) == 3


async def test_unknown_subject_is_an_empty_index(client: Client) -> None:
    await push_image(client, "acme/llm", "v1")
    for repo in ("acme/llm", "no/such/repo"):
        payload, _ = await referrers(client, repo, unknown_digest())
        assert payload == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


async def test_referrer_may_be_pushed_before_its_subject(client: Client) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    future_image = image_manifest(config, [b"later"])
    sbom = await push_referrer(client, "acme/llm", subject_of(future_image), artifact_type=SBOM)
    payload, _ = await referrers(client, "acme/llm", sha256(future_image))
    assert [entry["digest"] for entry in payload["manifests"]] == [sha256(sbom)]
    pushed = await push_image(client, "acme/llm", "v1", config=config, layers=[b"later"])
    assert pushed.digest == sha256(future_image)
    payload, _ = await referrers(client, "acme/llm", pushed.digest)
    assert [entry["digest"] for entry in payload["manifests"]] == [sha256(sbom)]


async def test_referrers_are_per_repository_and_follow_deletes(client: Client) -> None:
    image = await push_image(client, "acme/llm", "v1")
    subject = subject_of(image.body)
    kept = await push_referrer(client, "acme/llm", subject, artifact_type=SBOM)
    dropped = await push_referrer(client, "acme/llm", subject, artifact_type=SIGNATURE, payload=b"sig")
    await push_referrer(client, "acme/other", subject, artifact_type=SBOM, payload=b"elsewhere")
    payload, _ = await referrers(client, "acme/llm", image.digest)
    assert sorted(entry["digest"] for entry in payload["manifests"]) == sorted([sha256(kept), sha256(dropped)])
    assert (await client.delete(f"/v2/acme/llm/manifests/{sha256(dropped)}")).status == 202
    payload, _ = await referrers(client, "acme/llm", image.digest)
    assert [entry["digest"] for entry in payload["manifests"]] == [sha256(kept)]


async def test_referrer_pushed_twice_and_tagged_is_listed_once(client: Client) -> None:
    image = await push_image(client, "acme/llm", "v1")
    body = await push_referrer(client, "acme/llm", subject_of(image.body), artifact_type=SBOM)
    response = await client.put("/v2/acme/llm/manifests/sbom", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status == 201
    payload, _ = await referrers(client, "acme/llm", image.digest)
    assert [entry["digest"] for entry in payload["manifests"]] == [sha256(body)]


async def test_invalid_digest_is_400(client: Client) -> None:
    for bad in ("sha256:short", "latest", "sha256:" + "G" * 64, "foo:" + "0" * 64):
        response = await client.get(f"/v2/acme/llm/referrers/{bad}")
        assert response.status == 400, bad
        assert await error_code(response) == "DIGEST_INVALID", bad
