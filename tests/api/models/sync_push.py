"""Pushing a model through ``/v2`` with a synchronous httpx client (live servers), optionally with
a bearer token."""

from __future__ import annotations

import httpx

from tests.api.models.builders import MODELPACK_CONFIG, MODELPACK_MANIFEST, Layer, manifest
from tests.helpers import OCI_MANIFEST, sha256


def push_model_sync(
    http: httpx.Client, repo: str, tag: str, config: bytes, layers: list[Layer], token: str | None = None
) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for blob in [config, *(layer.data for layer in layers)]:
        started = http.post(f"/v2/{repo}/blobs/uploads/", headers=headers)
        assert started.status_code == 202, started.text
        done = http.put(started.headers["Location"], params={"digest": sha256(blob)}, content=blob, headers=headers)
        assert done.status_code == 201, done.text
    body = manifest(config, MODELPACK_CONFIG, layers, artifact_type=MODELPACK_MANIFEST)
    response = http.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={**headers, "Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])
