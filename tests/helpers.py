"""Builders for blobs and manifests used across the test suite (no mocks: real bytes, real digests)."""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

T = TypeVar("T")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def bounded(fn: Callable[..., T], *args: Any, timeout: float = 60.0, **kwargs: Any) -> T:
    """Run a client call that retries errors for minutes (oras-py does): a hang fails the test."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args, **kwargs).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise AssertionError(f"client call did not finish in {timeout} s (it retries errors)") from None
    finally:
        pool.shutdown(wait=False)


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def image_manifest(
    config: bytes,
    layers: list[bytes],
    *,
    media_type: str = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer_type, layer) for layer in layers],
    }
    if subject is not None:
        body["subject"] = subject
    if artifact_type is not None:
        body["artifactType"] = artifact_type
    if annotations is not None:
        body["annotations"] = annotations
    return json.dumps(body).encode()


def index_manifest(children: list[tuple[bytes, dict[str, str]]], *, media_type: str = OCI_INDEX) -> bytes:
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [descriptor(child_type, body, platform=platform) for body, platform in children],
        }
    ).encode()


async def push_blob(client: TestClient[Any, Any], repo: str, data: bytes) -> str:
    """Monolithic POST + PUT; returns the digest."""
    digest = sha256(data)
    started = await client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status == 202, await started.text()
    done = await client.put(started.headers["Location"], params={"digest": digest}, data=data)
    assert done.status == 201, await done.text()
    return digest


@dataclass
class PushedImage:
    digest: str
    body: bytes
    config: bytes
    layers: list[bytes]


async def push_image(
    client: TestClient[Any, Any],
    repo: str,
    reference: str,
    *,
    layers: list[bytes] | None = None,
    config: bytes | None = None,
    media_type: str = OCI_MANIFEST,
    **manifest_args: Any,
) -> PushedImage:
    """Push the blobs and manifest of a small image; returns what was pushed."""
    layers = layers if layers is not None else [b"layer-" + reference.encode()]
    config = config if config is not None else json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    for blob in [config, *layers]:
        await push_blob(client, repo, blob)
    body = image_manifest(config, layers, media_type=media_type, **manifest_args)
    response = await client.put(f"/v2/{repo}/manifests/{reference}", data=body, headers={"Content-Type": media_type})
    assert response.status == 201, await response.text()
    return PushedImage(response.headers["Docker-Content-Digest"], body, config, layers)


async def error_code(response: Any) -> str:
    """The first OCI error code of an error response (and proof the body has the spec's shape)."""
    payload = await response.json(content_type=None)
    assert set(payload) == {"errors"}, payload
    first = payload["errors"][0]
    assert isinstance(first["message"], str) and first["message"], first
    return str(first["code"])


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for ``localhost``: ``(cert.pem, key.pem)`` in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
