"""Digests, names, tags and manifest parsing: the grammar of the specs, independent of HTTP."""

from __future__ import annotations

import json

import pytest

from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.manifest import parse_manifest
from modelyard.domain.reference import validate_name, validate_tag

HEX = "a" * 64


@pytest.mark.parametrize(
    "value",
    [f"sha256:{HEX}", "sha512:" + "b" * 128],
)
def test_valid_digests_round_trip(value: str) -> None:
    assert str(Digest.parse(value)) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("sha256:" + "A" * 64, "lowercase"),
        ("sha256:" + "a" * 63, "64"),
        ("md5:" + "a" * 32, "unsupported"),
        ("sha256", "algorithm:hex"),
        ("sha256:../../etc/passwd", "algorithm:hex"),
        ("", "algorithm:hex"),
    ],
)
def test_invalid_digests_say_why(value: str, why: str) -> None:
    with pytest.raises(RegistryError) as caught:
        Digest.parse(value)
    assert caught.value.code is ErrorCode.DIGEST_INVALID
    assert why in caught.value.message


def test_digest_of_bytes_matches_hashlib() -> None:
    assert str(Digest.of(b"")) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("name", ["llm", "acme/llm", "a.b_c__d-e/f--g", "a/b/c/d", "x" * 255])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["Acme/llm", "acme/", "/acme", "acme//llm", "..", "acme/../x", "a_-b", "-a", "a" * 256, "a b"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(RegistryError) as caught:
        validate_name(name)
    assert caught.value.code is ErrorCode.NAME_INVALID


@pytest.mark.parametrize("tag", ["latest", "v1.0.0", "_x", "A-b.C_d", "x" * 128])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", [".hidden", "-x", "x" * 129, "a/b", "", "a:b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(RegistryError) as caught:
        validate_tag(tag)
    assert caught.value.code is ErrorCode.TAG_INVALID


def _manifest(**fields: object) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{HEX}", "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "c" * 64, "size": 5},
            {
                "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "digest": "sha256:" + "d" * 64,
                "size": 5,
                "urls": ["https://example.com/l"],
            },
        ],
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def test_image_manifest_requires_config_and_local_layers_only() -> None:
    parsed = parse_manifest(_manifest(), mediatypes.OCI_MANIFEST)
    assert parsed.required_blobs() == [f"sha256:{HEX}", "sha256:" + "c" * 64]  # the foreign layer is not required
    assert parsed.required_manifests() == []
    assert parsed.referrer_artifact_type() == "application/vnd.oci.image.config.v1+json"


def test_artifact_type_wins_over_config_type() -> None:
    parsed = parse_manifest(_manifest(artifactType="application/vnd.acme.eval.v1"), None)
    assert parsed.referrer_artifact_type() == "application/vnd.acme.eval.v1"


def test_media_type_is_inferred_when_absent() -> None:
    assert parse_manifest(_manifest(mediaType=None), None).media_type == mediatypes.OCI_MANIFEST
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(index, None).media_type == mediatypes.OCI_INDEX


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"not json", None, "not valid JSON"),
        (_manifest(schemaVersion=1), None, "schemaVersion must be 2"),
        (_manifest(mediaType="application/vnd.unknown+json"), None, "unsupported manifest media type"),
        (_manifest(), mediatypes.DOCKER_MANIFEST, "does not match"),
        (_manifest(config=None), None, "'config'"),
        (_manifest(layers=[{"mediaType": "x", "digest": "sha256:zz", "size": 1}]), None, "layers.0.digest"),
        (_manifest(layers=[{"mediaType": "x", "digest": f"sha256:{HEX}", "size": -1}]), None, "layers.0.size"),
    ],
)
def test_invalid_manifests_are_manifest_invalid(body: bytes, content_type: str | None, fragment: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_manifest(body, content_type)
    assert caught.value.code is ErrorCode.MANIFEST_INVALID
    assert fragment in caught.value.message


def test_content_type_parameters_are_ignored() -> None:
    parsed = parse_manifest(_manifest(), mediatypes.OCI_MANIFEST + "; charset=utf-8")
    assert parsed.media_type == mediatypes.OCI_MANIFEST
