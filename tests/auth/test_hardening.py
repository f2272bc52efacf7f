"""Smaller hardening (issue 8, item 9): one log record is one line, a client that hangs up is a
client abort, the token realm is ``public_host``, and admin bodies must be declared JSON.

The log tests run ``modelyard serve --auth`` as a subprocess, so they read the log its users
read.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.auth.conftest import AuthRegistryFactory
from tests.auth.support import ADMIN_PASSWORD, AuthServerProcess, basic, challenge_params
from tests.interop.serverproc import register_servers

ADMIN = basic("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServerProcess]:
    """A server with the access log on (its log is what these tests read)."""
    root = tmp_path_factory.mktemp("hardening")
    server = AuthServerProcess(
        root / "data", root / "server.log", extra=("--auth",), env={"MODELYARD_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _attach_log(request: pytest.FixtureRequest) -> None:
    if "logged" in request.fixturenames:
        register_servers(request.node, [request.getfixturevalue("logged")])


def _wait_for(server: AuthServerProcess, text: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = server.log()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in the server log:\n{server.log()[-3000:]}")


def test_a_user_name_cannot_forge_log_lines(logged: AuthServerProcess) -> None:
    forged = "evil\n2026-01-01 00:00:00,000 INFO modelyard.audit: user:admin login registry success from 10.0.0.1"
    request = urllib.request.Request(
        f"{logged.url}/auth/token?service=modelyard",
        headers={"Authorization": "Basic " + base64.b64encode(f"{forged}:wrong".encode()).decode()},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    log = _wait_for(logged, "evil\\n2026-01-01")
    assert not [line for line in log.splitlines() if line.startswith("2026-01-01")], "a forged line is in the log"


def _hang_up(server: AuthServerProcess, head: str, sent: bytes) -> None:
    """Send a request head announcing 1 MB, part of the body, and close the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(head.encode() + b"Content-Length: 1000000\r\n\r\n" + sent)
        time.sleep(0.3)


def test_a_client_that_hangs_up_mid_body_is_a_client_abort(logged: AuthServerProcess) -> None:
    _hang_up(logged, f"POST /api/v1/compartments HTTP/1.1\r\nHost: x\r\nAuthorization: {ADMIN}\r\n"
                     "Content-Type: application/json\r\n", b'{"name": "half')  # fmt: skip
    scope = "repository:acme/cut:pull,push"
    token_request = urllib.request.Request(
        f"{logged.url}/auth/token?service=modelyard&scope={scope}", headers={"Authorization": ADMIN}
    )
    token = json.load(urllib.request.urlopen(token_request, timeout=30))["token"]
    started = urllib.request.Request(
        f"{logged.url}/v2/acme/cut/blobs/uploads/", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    location = urllib.request.urlopen(started, timeout=30).headers["Location"]
    _hang_up(logged, f"PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/octet-stream\r\n", b"x" * 5000)  # fmt: skip

    log = _wait_for(logged, "client disconnected during PATCH")
    assert "client disconnected during POST /api/v1/compartments" in log
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
    assert '"POST /api/v1/compartments HTTP/1.1" 499' in log
    assert f'"PATCH {location} HTTP/1.1" 499' in log
    assert '" 500 ' not in log


def test_the_token_realm_is_the_public_host(registry_factory: AuthRegistryFactory) -> None:
    """Behind a proxy ``public_host`` is set: a client's ``Host`` header can't send others'
    credentials elsewhere."""
    registry = registry_factory(public_host="registry.example.com")
    response = registry.http.get("/v2/", headers={"Host": "attacker.example"})
    assert response.status_code == 401
    assert challenge_params(response.headers["WWW-Authenticate"])["realm"] == "http://registry.example.com/auth/token"


def test_admin_bodies_must_be_declared_json(registry_factory: AuthRegistryFactory) -> None:
    """A cross-site form can post text/plain that happens to be JSON; it is refused with 415."""
    registry = registry_factory()
    body = json.dumps({"name": "formed"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = registry.http.post(
            "/api/v1/compartments", content=body, headers={"Authorization": ADMIN, "Content-Type": content_type}
        )
        assert response.status_code == 415, response.text
        error = response.json()["errors"][0]
        assert error["code"] == "UNSUPPORTED" and "Content-Type: application/json" in error["message"]
    created = registry.http.post(
        "/api/v1/compartments", content=body,
        headers={"Authorization": ADMIN, "Content-Type": "application/json; charset=utf-8"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
