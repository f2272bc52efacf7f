"""A registry with something to show, built over HTTP like a team would: an administrator, a
reader, a compartment, a private model repository with a hostile README, two versions pushed
with the SDK (``modelyard push``), an alias, and a model card attached as a referrer.

Shared by the handler tests (``test_handlers.py``) and the browser tests (``test_browser.py``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from modelyard.sdk import Registry as Sdk
from tests.auth.support import ADMIN_PASSWORD, OCI_MANIFEST, Registry
from tests.helpers import sha256
from tests.models.support import make_model

READER = ("bob", "bob-Pa55word-for-tests")
REPO = "acme/llm"
CARD_TYPE = "application/vnd.acme.model-card.v1"
EVAL_TYPE = "application/vnd.acme.eval.v1+json"
HOSTILE_README = """# ACME LLM

A small model for tests.

<script>document.title = "pwned-by-script"</script>

[click me](javascript:document.title='pwned-by-link')
<a href="javascript:document.title='pwned-by-html-link'" onclick="document.title='pwned-by-onclick'">html link</a>
<img src="https://tracker.example/pixel.png" alt="tracker">
<img src="x" onerror="document.title='pwned-by-onerror'" alt="broken">

| metric | value |
|---|---|
| accuracy | 0.91 |
"""
MODEL_CARD = "# Evaluation card\n\nThe model scores **0.91** on the test set.\n\n<script>alert(1)</script>\n"


@dataclass(frozen=True)
class Seeded:
    url: str
    v1: str  # digests
    v2: str
    card: str


def _attach(http: Registry, token: str, subject: str, subject_size: int, artifact_type: str, layer_type: str,
            content: bytes, title: str) -> str:  # fmt: skip
    empty = b"{}"
    http.push_blob(REPO, empty, token)
    http.push_blob(REPO, content, token)
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2},
        "layers": [{"mediaType": layer_type, "digest": sha256(content), "size": len(content),
                    "annotations": {"org.opencontainers.image.title": title}}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }  # fmt: skip
    raw = json.dumps(body).encode()
    response = http.put_manifest(REPO, sha256(raw), raw, token)
    assert response.status_code == 201, response.text
    return sha256(raw)


def seed(url: str, workdir: Path) -> Seeded:
    http = Registry(url)
    admin = ("admin", ADMIN_PASSWORD)
    try:
        auth = {"Authorization": "Basic " + base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()}
        for method, path, body in [
            ("POST", "/api/v1/users", {"name": READER[0], "email": "bob@acme.com", "password": READER[1]}),
            ("POST", "/api/v1/compartments", {"name": "acme", "description": "ACME ML"}),
            ("POST", "/api/v1/repositories", {
                "compartment_id": "acme", "display_name": "llm", "description": "ACME's language model",
                "immutable_tag_patterns": ["v*"],
                "readme": {"content": base64.b64encode(HOSTILE_README.encode()).decode(), "format": "TEXT_MARKDOWN"},
            }),
            ("POST", "/api/v1/repositories", {"compartment_id": "acme", "display_name": "public-demo",
                                              "is_public": True, "description": "Anyone may pull"}),
        ]:  # fmt: skip
            response = http.http.request(method, path, json=body, headers=auth)
            assert response.status_code == 201, response.text
        with Sdk(url, username=admin[0], password=admin[1]) as sdk:
            first = sdk.push_model(make_model(workdir / "v1", seed=1), f"{REPO}:v1")
            second = sdk.push_model(make_model(workdir / "v2", seed=2, extra=True), f"{REPO}:v2")
        token = http.token(f"repository:{REPO}:pull,push", auth=admin)
        manifest = http.request("GET", f"/v2/{REPO}/manifests/v1", token, headers={"Accept": OCI_MANIFEST})
        assert http.put_manifest(REPO, "prod", manifest.content, token).status_code == 201
        card = _attach(http, token, first.digest, len(manifest.content), CARD_TYPE, "text/markdown",
                       MODEL_CARD.encode(), "CARD.md")  # fmt: skip
        _attach(http, token, first.digest, len(manifest.content), EVAL_TYPE, "application/json",
                json.dumps({"accuracy": 0.91, "dataset": "acme-eval"}).encode(), "eval.json")  # fmt: skip
        return Seeded(url, first.digest, second.digest, card)
    finally:
        http.close()
