"""Helpers for the auth suites: a synchronous registry client that gets its tokens from
``/auth/token`` like a real client, token-aware push helpers, and the refusal checks.

Everything talks HTTP to a real server (the in-process live server or ``modelyard serve``);
nothing of modelyard is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import sha256
from tests.interop.serverproc import START_TIMEOUT, ServerProcess, serve_command

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ALL_MANIFESTS = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
ADMIN_PASSWORD = "admin-Pa55word-for-tests"
SERVICE = "modelyard"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without verifying (what a client could read too)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def access_of(token: str) -> dict[str, list[str]]:
    """``{"repository:acme/llm": ["pull"], ...}`` from a token's ``access`` claim."""
    return {f"{a['type']}:{a['name']}": list(a["actions"]) for a in jwt_claims(token).get("access", [])}


def challenge_params(header: str) -> dict[str, str]:
    """``Bearer realm="...",service="..."`` -> ``{"realm": ..., "service": ...}``."""
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str | None
    detail: Any = None


def refusal_of(response: httpx.Response) -> Refusal:
    """Status and first OCI error code of a response (``None`` code for a body-less HEAD)."""
    if response.request.method == "HEAD" or not response.content:
        return Refusal(response.status_code, None)
    body = response.json()
    assert set(body) == {"errors"}, body
    first = body["errors"][0]
    assert isinstance(first["message"], str) and first["message"], first
    return Refusal(response.status_code, str(first["code"]), first.get("detail"))


class Registry:
    """A registry over HTTP: ``/auth/token``, ``/v2`` and ``/api/v1`` with explicit credentials."""

    def __init__(self, url: str, data_dir: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.data_dir = data_dir
        self.host = self.url.split("://", 1)[1]
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def close(self) -> None:
        self.http.close()

    # -- tokens ----------------------------------------------------------------------------

    def token_response(
        self, *scopes: str, auth: tuple[str, str] | None = None, offline: bool = False
    ) -> httpx.Response:
        """``GET /auth/token`` as docker does: Basic credentials (or none) and the scopes."""
        params: list[tuple[str, str]] = [("service", SERVICE), *(("scope", s) for s in scopes)]
        if offline:
            params.append(("offline_token", "true"))
        headers = {"Authorization": basic(*auth)} if auth else {}
        return self.http.get("/auth/token", params=params, headers=headers)

    def token(self, *scopes: str, auth: tuple[str, str] | None = None) -> str:
        response = self.token_response(*scopes, auth=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token"] == body["access_token"]
        return str(body["token"])

    def password_grant(self, username: str, password: str, *scopes: str, offline: bool = True) -> httpx.Response:
        form = {"grant_type": "password", "username": username, "password": password, "service": SERVICE,
                "client_id": "tests", "scope": " ".join(scopes)}  # fmt: skip
        if offline:
            form["access_type"] = "offline"
        return self.http.post("/auth/token", data=form)

    def refresh_grant(self, refresh_token: str, *scopes: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "service": SERVICE,
                "client_id": "tests", "scope": " ".join(scopes)}  # fmt: skip
        return self.http.post("/auth/token", data=form)

    def refresh_token(self, username: str, password: str) -> str:
        response = self.password_grant(username, password)
        assert response.status_code == 200, response.text
        return str(response.json()["refresh_token"])

    def token_from_refresh(self, refresh_token: str, *scopes: str) -> str:
        response = self.refresh_grant(refresh_token, *scopes)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    # -- requests --------------------------------------------------------------------------

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kwargs)

    def api(self, method: str, path: str, token: str | None, status: int, **kwargs: Any) -> Any:
        """An admin request that must answer ``status``; the JSON body (``None`` for 204)."""
        response = self.request(method, path, token, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return None if status == 204 else response.json()

    # -- pushing ---------------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes, token: str) -> str:
        digest = sha256(data)
        started = self.request("POST", f"/v2/{repo}/blobs/uploads/", token)
        assert started.status_code == 202, started.text
        done = self.request("PUT", started.headers["Location"], token, params={"digest": digest}, content=data)
        assert done.status_code == 201, done.text
        return digest

    def put_manifest(self, repo: str, reference: str, body: bytes, token: str) -> httpx.Response:
        return self.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", token, content=body, headers={"Content-Type": OCI_MANIFEST}
        )

    def push_image(self, repo: str, tag: str, token: str, seed: str, **manifest: Any) -> Image:
        image = make_image(seed, **manifest)
        for blob in image.blobs:
            self.push_blob(repo, blob, token)
        response = self.put_manifest(repo, tag, image.manifest, token)
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == image.digest
        return image


@dataclass(frozen=True)
class Image:
    manifest: bytes
    config: bytes
    layer: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> list[bytes]:
        return [self.config, self.layer]


def make_image(seed: str, *, subject: Image | None = None, artifact_type: str | None = None) -> Image:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer of {seed}".encode()
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
    }
    if subject is not None:
        body["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.manifest)}
    if artifact_type is not None:
        body["artifactType"] = artifact_type
    return Image(json.dumps(body).encode(), config, layer)


# -- ``modelyard serve --auth`` as a subprocess ---------------------------------------------


class AuthServerProcess(ServerProcess):
    """``modelyard serve --auth``: ready when ``/v2/`` answers (401 with auth on), with its own
    environment (``MODELYARD_ADMIN_PASSWORD``) and stderr kept apart from stdout."""

    def __init__(self, data_dir: Path, log_path: Path, *, extra: tuple[str, ...], env: dict[str, str]) -> None:
        super().__init__(data_dir, log_path, extra=extra)
        self.env = env
        self.stderr_path = log_path.with_suffix(".stderr")

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "server already running"
        self.starts += 1
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        with open(self.log_path, "ab") as log, open(self.stderr_path, "ab") as err:
            for stream in (log, err):
                stream.write(f"--- start #{self.starts} ---\n".encode())
                stream.flush()
            self.process = subprocess.Popen(
                serve_command(self.port, self.data_dir, *self.extra),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=err,
                start_new_session=True,
                env={**environment, "PYTHONUNBUFFERED": "1", **self.env},
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"modelyard serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=2):
                    return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"modelyard serve --auth did not answer GET /v2/ in {START_TIMEOUT} s:\n{self.log()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log(self) -> str:
        return super().log() + "\n--- stderr ---\n" + self.stderr()


@contextmanager
def running_auth_server(root: Path) -> Iterator[AuthServerProcess]:
    """``modelyard serve --auth`` on a fresh data directory under ``root``, admin password set."""
    process = AuthServerProcess(
        root / "data", root / "server.log", extra=("--auth", "--no-access-log"),
        env={"MODELYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()
