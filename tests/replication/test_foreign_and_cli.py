"""Replication to a foreign registry -- CNCF Distribution 2.8.2, Debian's ``docker-registry`` --
and ``modelyard replication …`` end to end against two live modelyard servers.

Distribution 2.8 has no referrers API: a referrer replicated there is found through the
referrers tag (``sha256-<hex>``) that the target client maintains, as the OCI spec asks of a
client pushing to such a registry."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelyard.config import Settings
from tests.cli.liveserver import LiveServer, live_server
from tests.cli.test_cli import EXIT_NOT_FOUND, EXIT_USAGE, Cli, push
from tests.helpers import OCI_INDEX, OCI_MANIFEST, sha256
from tests.interop.serverproc import free_port
from tests.replication.conftest import FAST
from tests.replication.test_replication import (
    CARD,
    CARD_TYPE,
    executions,
    manifest_on,
    push_model,
    put_manifest,
    setup,
    wait_for,
)

DISTRIBUTION = "/usr/bin/docker-registry"
CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("docker-registry") or DISTRIBUTION
    if not Path(binary).exists():
        pytest.fail("docker-registry is not installed: run scripts/bootstrap --system (Debian's docker-registry)")
    port = free_port()
    (tmp_path / "distribution").mkdir()
    config = tmp_path / "distribution.yml"
    config.write_text(CONFIG.format(root=tmp_path / "distribution", port=port))
    log = open(tmp_path / "distribution.log", "wb")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "distribution.log").read_text()
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def test_replication_to_distribution_2_8(api: httpx.Client, distribution: str) -> None:
    image, index, _children, card_digest = push_model(api)
    push(api, "acme/other", "v1", [b"weights-" * 5000])  # its big layer is mounted from acme/llm

    setup(api, distribution, mirror_deletes=True)
    done = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True}).json()
    assert done["status"] == "succeeded", done
    assert done["manifests_copied"] == 6 and done["blobs_mounted"] >= 1, done

    with httpx.Client(base_url=distribution, timeout=30) as remote:
        assert manifest_on(remote, "acme/llm", "v1") == image
        assert manifest_on(remote, "acme/llm", "multi") == index
        assert manifest_on(remote, "acme/other", "v1")
        assert remote.get(f"/v2/acme/llm/blobs/{sha256(CARD)}").content == CARD
        fallback = remote.get(f"/v2/acme/llm/manifests/{image.replace(':', '-')}", headers={"Accept": OCI_INDEX})
        assert fallback.status_code == 200, fallback.text
        listed = fallback.json()["manifests"]
        assert [(m["digest"], m["artifactType"]) for m in listed] == [(card_digest, CARD_TYPE)]

        again = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True}).json()
        assert (again["status"], again["bytes_copied"], again["manifests_copied"]) == ("succeeded", 0, 0), again

        # Distribution cannot delete a tag alone: the mirrored delete takes the manifest it names.
        other = manifest_on(api, "acme/other", "v1")
        assert api.delete(f"/v2/acme/other/manifests/{other}").status_code == 202

        def gone() -> bool:
            return manifest_on(remote, "acme/other", str(other)) is None

        deadline = time.monotonic() + 30
        while not gone():
            assert time.monotonic() < deadline, "the delete did not reach Distribution"
            time.sleep(0.1)


@pytest.fixture
def second(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(data_dir=tmp_path / "second", **FAST) as running:
        yield running


def test_replication_commands(source: LiveServer, second: LiveServer, api: httpx.Client) -> None:
    cli = Cli(source)
    push(api, "acme/llm", "v1", [b"weights"])
    made: dict[str, Any] = cli.json("replication", "target", "add", "dr", second.url)
    assert made["name"] == "dr" and made["has_password"] is False
    added = cli("replication", "target", "add", "locked", second.url, "-u", "bot", "--password-stdin", "--json",
                stdin="s3cret-token\n")  # fmt: skip
    secured = json.loads(added.stdout)
    assert secured["has_password"] is True and "s3cret" not in str(secured)
    assert [t["name"] for t in cli.json("replication", "target", "list")] == ["dr", "locked"]
    assert "s3cret" not in api.get("/api/v1/audit").text
    cli("replication", "target", "add", "bad", "ftp://example", code=EXIT_USAGE)

    rule = cli.json("replication", "rule", "add", "to-dr", "--target", "dr", "--repos", "acme/*", "--prefix", "copy")
    assert (rule["target"], rule["repositories"], rule["destination_prefix"]) == ("dr", "acme/*", "copy")
    assert "to-dr" in cli("replication", "rule", "list").stdout

    ran = cli.json("replication", "run", "to-dr")
    assert ran["status"] == "succeeded" and ran["manifests_copied"] == 1 and ran["bytes_copied"] > 0
    with httpx.Client(base_url=second.url, timeout=30) as remote:
        assert manifest_on(remote, "copy/acme/llm", "v1") == manifest_on(api, "acme/llm", "v1")
    table = cli("replication", "executions", "--rule", "to-dr").stdout
    assert "succeeded" in table and "manual" in table
    assert [e["id"] for e in cli.json("replication", "executions")] == [ran["id"]]
    cli("replication", "run", "nope", code=EXIT_NOT_FOUND)
    finished = [e for e in api.get("/api/v1/audit").json()["items"] if e["action"] == "replication.run"]
    assert finished and finished[0]["detail"]["status"] == "succeeded", finished
    types = api.get("/api/v1/webhook-event-types").json()["items"]
    assert "replication.finished" in types  # webhooks can subscribe to it

    cli("replication", "rule", "disable", "to-dr")
    assert cli.json("replication", "rule", "list")[0]["enabled"] is False
    push(api, "acme/llm", "v2", [b"more weights"])  # a disabled rule queues nothing on push
    time.sleep(0.5)  # several of the leader's polls: the push's event is read and passed over
    cli("replication", "rule", "enable", "to-dr")
    marker = push(api, "acme/llm", "v3", [b"after enabling"])  # queued after v2's event: v2 was read by then
    with httpx.Client(base_url=second.url, timeout=30) as remote:
        wait_for(lambda: manifest_on(remote, "copy/acme/llm", "v3") == marker, what="v3 on the target")
        assert manifest_on(remote, "copy/acme/llm", "v2") is None
    cli("replication", "rule", "enable", "nope", code=EXIT_NOT_FOUND)
    cli("replication", "rule", "rm", "to-dr")
    assert cli.json("replication", "rule", "list") == []
    cli("replication", "target", "rm", "locked")
    assert [t["name"] for t in cli.json("replication", "target", "list")] == ["dr"]


def test_a_target_with_token_auth_gets_the_stored_credentials(
    api: httpx.Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The target answers 401 with a Bearer challenge; the stored (encrypted) password earns the
    token. A wrong one is a failed execution whose error says the target refused -- and neither
    password is in that error, the replication.finished event, the audit log or the server log."""
    caplog.set_level(logging.DEBUG)
    password = "target-admin-password-1"
    with live_server(data_dir=tmp_path / "locked", auth_enabled=True, admin_password=password) as locked:
        digest = push(api, "acme/llm", "v1", [b"weights"])
        for name, secret in (("good", password), ("bad", "not-the-password")):
            made = api.post("/api/v1/replication/targets", json={
                "name": name, "url": locked.url, "username": "admin", "password": secret,
            })  # fmt: skip
            assert made.status_code == 201 and made.json()["has_password"] is True, made.text
            rule = {"name": f"to-{name}", "target": name, "repositories": "acme/*"}
            assert api.post("/api/v1/replication/rules", json=rule).status_code == 201
        refused = api.post("/api/v1/replication/rules/to-bad/run", json={"wait": True}).json()
        assert refused["status"] == "failed" and "401" in refused["error"], refused
        assert password not in str(api.get("/api/v1/replication/targets").json())
        finished = [e for e in api.get("/api/v1/audit").json()["items"] if e["action"] == "replication.run"]
        assert finished and finished[0]["detail"]["status"] == "failed", finished
        listed = api.get("/api/v1/replication/executions", params={"rule": "to-bad"}).text
        assert "replication to-bad (manual) execution" in caplog.text  # the server's log is read here
        for secret in (password, "not-the-password"):
            assert secret not in refused["error"] and secret not in listed
            assert secret not in json.dumps(finished) and secret not in caplog.text
        done = api.post("/api/v1/replication/rules/to-good/run", json={"wait": True}).json()
        assert done["status"] == "succeeded" and done["manifests_copied"] == 1, done
        with httpx.Client(base_url=locked.url, timeout=30) as remote:
            realm = remote.get("/v2/").headers["WWW-Authenticate"].split('realm="', 1)[1].split('"', 1)[0]
            scope = {"scope": "repository:acme/llm:pull", "service": "modelyard"}
            token = remote.get(realm, params=scope, auth=("admin", password))
            headers = {"Authorization": f"Bearer {token.json()['token']}", "Accept": OCI_MANIFEST}
            assert remote.head("/v2/acme/llm/manifests/v1", headers=headers).headers["Docker-Content-Digest"] == digest


def test_mounts_work_with_a_token_auth_target(api: httpx.Client, tmp_path: Path) -> None:
    """A blob the target holds in another repository is mounted, not sent again, also when the
    target wants tokens: the mount's token asks for pull on the source repository as well."""
    password = "target-admin-password-1"
    shared = b"shared-layer" * 5000
    with live_server(data_dir=tmp_path / "locked", auth_enabled=True, admin_password=password) as locked:
        push(api, "acme/one", "v1", [shared])
        push(api, "acme/two", "v1", [shared])
        made = api.post("/api/v1/replication/targets", json={
            "name": "locked", "url": locked.url, "username": "admin", "password": password,
        })  # fmt: skip
        assert made.status_code == 201, made.text
        rule = {"name": "to-locked", "target": "locked", "repositories": "acme/*"}
        assert api.post("/api/v1/replication/rules", json=rule).status_code == 201
        done = api.post("/api/v1/replication/rules/to-locked/run", json={"wait": True}).json()
        assert done["status"] == "succeeded", done
        assert done["blobs_mounted"] == 2 and done["bytes_copied"] < 2 * len(shared), done  # config and layer


#: The expiry test, past Settings' validation (test only): the target's tokens live 3 s (the
#: floor is 30 s) and the source sends 32 KiB chunks (the floor is 1 MiB), so one blob of a few
#: MiB takes several token lifetimes on loopback -- what a multi-GB blob does with real values.
SHORT_TOKEN_TTL = 3
SMALL_CHUNK = 32 << 10


def _server(directory: Path, below_floor: dict[str, Any], **values: Any) -> LiveServer:
    settings = Settings(**{"data_dir": directory, "fsync": False, "access_log": False, "auth_enabled": False, **values})
    return LiveServer(settings.model_copy(update=below_floor)).start()


def test_a_token_that_expires_mid_blob_is_refreshed_and_the_upload_goes_on(tmp_path: Path) -> None:
    """A blob of many PATCH chunks to a token-auth target whose tokens live 3 s: the client
    fetches a new token ahead of expiry (and, were a chunk still refused, resumes from the
    target's upload offset rather than resending a consumed body), so the copy completes and
    the target holds the blob byte for byte."""
    password = "target-admin-password-1"
    source = _server(tmp_path / "source", {"replication_chunk_size": SMALL_CHUNK}, **FAST)
    locked = _server(tmp_path / "short", {"token_ttl": SHORT_TOKEN_TTL}, auth_enabled=True, admin_password=password)
    try:
        with httpx.Client(base_url=source.url, timeout=60) as api:
            big = os.urandom(20 << 20)  # 640 PATCHes
            digest = push(api, "acme/big", "v1", [big])
            made = api.post("/api/v1/replication/targets", json={
                "name": "short", "url": locked.url, "username": "admin", "password": password,
            })  # fmt: skip
            assert made.status_code == 201, made.text
            rule = {"name": "to-short", "target": "short", "repositories": "acme/*", "on_push": False}
            assert api.post("/api/v1/replication/rules", json=rule).status_code == 201
            began = time.monotonic()
            done = api.post("/api/v1/replication/rules/to-short/run", json={"wait": True}).json()
            took = time.monotonic() - began
        assert done["status"] == "succeeded" and done["bytes_copied"] >= len(big), done
        # Past half a token's life the client fetches a new one (the old code stopped sending
        # its token after 1 s); the copy must span that for the test to prove anything.
        assert took > SHORT_TOKEN_TTL / 2, f"the copy took {took:.1f} s: no token was renewed during it"
        with httpx.Client(base_url=locked.url, timeout=60) as remote:
            realm = remote.get("/v2/").headers["WWW-Authenticate"].split('realm="', 1)[1].split('"', 1)[0]
            scope = {"scope": "repository:acme/big:pull", "service": "modelyard"}
            token = remote.get(realm, params=scope, auth=("admin", password)).json()["token"]
            headers = {"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST}
            assert remote.head("/v2/acme/big/manifests/v1", headers=headers).headers["Docker-Content-Digest"] == digest
            blob = remote.get(f"/v2/acme/big/blobs/{sha256(big)}", headers=headers)
            assert blob.status_code == 200 and "sha256:" + hashlib.sha256(blob.content).hexdigest() == sha256(big)
    finally:
        locked.stop()
        source.stop()


def _certificates(directory: Path) -> tuple[str, ssl.SSLContext]:
    """A CA (its PEM) and a server context whose certificate it signed for 127.0.0.1."""

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (directory / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return ca.public_bytes(serialization.Encoding.PEM).decode(), context


def test_tls_options_of_a_target(api: httpx.Client, tmp_path: Path) -> None:
    """An HTTPS target signed by a private CA: refused without it, verified with its CA bundle,
    or taken unverified when the target says so."""
    ca_pem, context = _certificates(tmp_path)
    with live_server(context, data_dir=tmp_path / "tls") as secure:
        push(api, "acme/llm", "v1", [b"weights"])
        for name, options in (("strict", {}), ("pinned", {"ca_pem": ca_pem}), ("insecure", {"tls_verify": False})):
            made = api.post("/api/v1/replication/targets", json={"name": name, "url": secure.url, **options})
            assert made.status_code == 201, made.text
            rule = {"name": f"to-{name}", "target": name, "repositories": "acme/*", "destination_prefix": name}
            assert api.post("/api/v1/replication/rules", json=rule).status_code == 201
        refused = api.post("/api/v1/replication/rules/to-strict/run", json={"wait": True}).json()
        assert refused["status"] == "failed" and "CERTIFICATE_VERIFY_FAILED" in refused["error"], refused
        for name in ("pinned", "insecure"):
            done = api.post(f"/api/v1/replication/rules/to-{name}/run", json={"wait": True}).json()
            assert done["status"] == "succeeded" and done["manifests_copied"] == 1, done
        assert api.get("/api/v1/replication/targets/pinned").json()["has_ca"] is True


def test_a_tag_delete_on_distribution_leaves_a_manifest_another_tag_names(api: httpx.Client, distribution: str) -> None:
    """Distribution 2.8 cannot delete a tag alone (405), so a mirrored tag delete could only
    delete the manifest, and every tag on it with it. With another tag on that manifest the
    delete is left undone, and the execution's scope says so; with none, the manifest goes."""
    digest = push(api, "acme/llm", "v1", [b"weights"])
    manifest = api.get("/v2/acme/llm/manifests/v1", headers={"Accept": OCI_MANIFEST}).content
    assert put_manifest(api, "acme/llm", "v1.0", manifest) == digest
    lone = push(api, "acme/llm", "lone", [b"other weights"])
    setup(api, distribution, mirror_deletes=True)
    done = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True}).json()
    assert done["status"] == "succeeded", done

    with httpx.Client(base_url=distribution, timeout=30) as remote:
        assert manifest_on(remote, "acme/llm", "v1.0") == digest
        assert api.delete("/v2/acme/llm/manifests/v1").status_code == 202
        assert api.delete("/v2/acme/llm/manifests/lone").status_code == 202

        def finished() -> dict[str, Any] | None:
            for execution in executions(api):
                if execution["trigger"] == "on_push" and "delete acme/llm:lone" in (execution["scope"] or ""):
                    return execution if execution["status"] != "running" else None
            return None

        execution = wait_for(finished, what="the mirrored deletes")
        assert execution["status"] == "succeeded", execution
        assert manifest_on(remote, "acme/llm", "v1.0") == digest  # the tag the source still has survives
        assert manifest_on(remote, "acme/llm", "lone") is None  # no other tag: the manifest went
        assert manifest_on(remote, "acme/llm", lone) is None
        noted = [e for e in executions(api) if "delete acme/llm:v1" in (e["scope"] or "")]
        assert len(noted) == 1 and noted[0]["status"] == "succeeded", noted
        assert "skipped: manifest still tagged" in noted[0]["scope"] and "tag acme/llm:v1 alone" in noted[0]["scope"]
