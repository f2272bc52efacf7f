"""The registry of the Hub API tests as the tests see it (the fixtures are ``conftest.py``'s):
the bytes the server sent on ``/resolve/``, and the keys and helpers to push and move tags."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from huggingface_hub import HfApi
from typer.testing import CliRunner

from modelyard.cli.main import app as cli_app
from modelyard.client.oci import Credentials, OciClient, sha256_digest
from tests.cli.liveserver import LiveServer

ADMIN_PASSWORD = "hub-admin-password-1"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Served:
    """What the server answered on ``/resolve/``: (method, path, status, body bytes)."""

    responses: list[tuple[str, str, int, int]] = field(default_factory=list)

    def clear(self) -> None:
        self.responses.clear()

    def downloads(self) -> dict[str, int]:
        """Files sent with a body (GET 200/206), by path after the revision, and their bytes."""
        sent: dict[str, int] = {}
        for method, path, status, size in self.responses:
            if method == "GET" and status in (200, 206) and "/resolve/" in path:
                name = path.split("/resolve/", 1)[1].split("/", 1)[1]
                sent[name] = sent.get(name, 0) + size
        return sent

    def requests(self) -> int:
        return len(self.responses)


@dataclass
class Hub:
    server: LiveServer
    served: Served
    pusher_key: str  # writes compartment acme
    reader_key: str  # reads compartment acme
    stranger_key: str  # reads nothing

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, token: str | None = None) -> HfApi:
        return HfApi(endpoint=self.url, token=token if token is not None else False)

    def push(self, directory: Path, reference: str) -> str:
        runner = CliRunner(env={"MODELYARD_API_KEY": self.pusher_key, "MODELYARD_URL": None})
        result = runner.invoke(cli_app, ["push", str(directory), reference, "--json", "--registry", self.url])
        assert result.exit_code == 0, result.output
        return str(json.loads(result.stdout)["digest"])

    def push_layers(self, repository: str, tag: str, layers: list[tuple[str, bytes]]) -> str:
        """A manifest of the given layers (media type, bytes) and an empty config, pushed on /v2."""
        config = b"{}"
        oci = OciClient(self.url, credentials=Credentials(password=self.pusher_key))
        try:
            oci.upload_bytes(repository, config)
            for _, data in layers:
                oci.upload_bytes(repository, data)
            manifest = {
                "schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(config),
                           "size": len(config)},
                "layers": [{"mediaType": m, "digest": sha256_digest(d), "size": len(d)} for m, d in layers],
            }  # fmt: skip
            return oci.put_manifest(repository, tag, json.dumps(manifest).encode(), MANIFEST)
        finally:
            oci.close()

    def create(self, repository: str, *, public: bool) -> None:
        compartment, _, name = repository.partition("/")
        body = {"compartment_id": compartment, "display_name": name, "is_public": public}
        response = httpx.post(f"{self.url}/api/v1/repositories", json=body, auth=("admin", ADMIN_PASSWORD))
        assert response.status_code == 201, response.text

    def alias(self, repository: str, alias: str, target: str) -> None:
        """Move an alias with the alias API (``PUT …/-/aliases/{alias}``), as the pusher."""
        url = f"{self.url}/api/v1/repositories/{repository}/-/aliases/{alias}"
        response = httpx.put(url, json={"target": target}, headers={"Authorization": f"Bearer {self.pusher_key}"})
        assert response.status_code == 200, response.text

    def rollback(self, repository: str, alias: str) -> str:
        """Roll an alias back to its previous target; the digest it points at now."""
        url = f"{self.url}/api/v1/repositories/{repository}/-/aliases/{alias}/rollback"
        response = httpx.post(url, json={}, headers={"Authorization": f"Bearer {self.pusher_key}"})
        assert response.status_code == 200, response.text
        return str(response.json()["digest"])

    def move(self, repository: str, tag: str, digest: str) -> None:
        """Point ``tag`` at ``digest`` (what moving an alias does on /v2)."""
        oci = OciClient(self.url, credentials=Credentials(password=self.pusher_key))
        try:
            manifest = oci.get_manifest(repository, digest, accept=[MANIFEST])
            oci.put_manifest(repository, tag, manifest.body, manifest.media_type)
        finally:
            oci.close()
