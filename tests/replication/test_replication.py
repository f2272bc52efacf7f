"""Push replication between two real modelyard servers on 127.0.0.1 (no peer is mocked): on
push (an image, an index and its children, the referrers of a version), a manual pass that
skips what the target has and mounts within it, a resume after the target was SIGKILLed
mid-copy (only the remaining bytes are counted), and mirrored deletes."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, select, update

from modelyard.bootstrap import build_registry
from modelyard.config import Settings
from modelyard.domain.replication import NewRule
from modelyard.metadata import tables as t
from tests.cli.liveserver import LiveServer, live_server
from tests.cli.test_cli import push
from tests.helpers import OCI_INDEX, OCI_MANIFEST, image_manifest, index_manifest, sha256
from tests.interop.serverproc import ServerProcess
from tests.replication.conftest import FAST

T = TypeVar("T")
CARD_TYPE = "application/vnd.modelyard.model-card.v1+json"


def wait_for(
    check: Callable[[], T | None], timeout: float = 30.0, what: str = "the condition", every: float = 0.05
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def put_blob(api: httpx.Client, repo: str, data: bytes) -> None:
    started = api.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    assert api.put(started.headers["Location"], params={"digest": sha256(data)}, content=data).status_code == 201


def put_manifest(api: httpx.Client, repo: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST) -> str:
    response = api.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])


def setup(api: httpx.Client, target_url: str, **rule: Any) -> None:
    made = api.post("/api/v1/replication/targets", json={"name": "dr", "url": target_url})
    assert made.status_code == 201, made.text
    body = {"name": "to-dr", "target": "dr", "repositories": "acme/*", **rule}
    made = api.post("/api/v1/replication/rules", json=body)
    assert made.status_code == 201, made.text


def executions(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/api/v1/replication/executions", params={"rule": "to-dr"})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def manifest_on(client: httpx.Client, repo: str, ref: str) -> str | None:
    accept = ", ".join([OCI_MANIFEST, OCI_INDEX])
    response = client.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


CARD = b"# LLM\nA model card."


def push_model(api: httpx.Client) -> tuple[str, str, list[bytes], str]:
    """acme/llm: ``v1`` (an image), ``multi`` (an index of two images pushed by digest) and a
    model card referring to ``v1``; their digests, the children's bodies, the card's digest."""
    image = push(api, "acme/llm", "v1", [b"weights-" * 5000, b"tokenizer"])
    children = [(image_manifest(b'{"os":"linux"}', [f"layer-{arch}".encode()]), {"architecture": arch, "os": "linux"})
                for arch in ("amd64", "arm64")]  # fmt: skip
    for body, platform in children:
        put_blob(api, "acme/llm", b'{"os":"linux"}')
        put_blob(api, "acme/llm", f"layer-{platform['architecture']}".encode())
        put_manifest(api, "acme/llm", sha256(body), body)
    index = put_manifest(api, "acme/llm", "multi", index_manifest(children), OCI_INDEX)
    put_blob(api, "acme/llm", CARD)
    put_blob(api, "acme/llm", b"{}")
    subject = {"mediaType": OCI_MANIFEST, "digest": image, "size": len(api.get("/v2/acme/llm/manifests/v1").content)}
    card_manifest = image_manifest(
        b"{}", [CARD], config_type="application/vnd.oci.empty.v1+json", layer_type="text/markdown",
        subject=subject, artifact_type=CARD_TYPE,
    )  # fmt: skip
    return (
        image,
        index,
        [body for body, _ in children],
        put_manifest(api, "acme/llm", sha256(card_manifest), card_manifest),
    )


def test_on_push_copies_an_image_an_index_and_referrers(
    api: httpx.Client, source: LiveServer, target: LiveServer
) -> None:
    setup(api, target.url, destination_prefix="mirror")
    image, index, children, card_digest = push_model(api)

    with httpx.Client(base_url=target.url, timeout=30) as remote:
        wait_for(lambda: manifest_on(remote, "mirror/acme/llm", "v1") == image, what="v1 on the target")
        wait_for(lambda: manifest_on(remote, "mirror/acme/llm", "multi") == index, what="the index on the target")
        for body in children:
            assert manifest_on(remote, "mirror/acme/llm", sha256(body)) == sha256(body)

        def card_listed() -> bool:
            listed = remote.get(f"/v2/mirror/acme/llm/referrers/{image}").json()["manifests"]
            return [m["digest"] for m in listed] == [card_digest]

        wait_for(card_listed, what="the model card among the target's referrers of v1")
        assert remote.get(f"/v2/mirror/acme/llm/blobs/{sha256(CARD)}").content == CARD
        assert (
            remote.get(f"/v2/mirror/acme/llm/manifests/{image}").content
            == api.get(f"/v2/acme/llm/manifests/{image}").content
        )

    def all_done() -> list[dict[str, Any]] | None:
        found = executions(api)
        done = [e for e in found if e["status"] != "running"]
        copied = sum(e["manifests_copied"] for e in done)
        return done if copied >= 5 and len(done) == len(found) else None

    done = wait_for(all_done, what="the executions to finish")
    assert all(e["status"] == "succeeded" and e["trigger"] == "on_push" and e["error"] is None for e in done)
    assert sum(e["bytes_copied"] for e in done) >= len(b"weights-" * 5000) + len(CARD)
    assert all(e["duration_seconds"] is not None and e["finished_at"] for e in done)
    # The index's children, pushed by digest, refer to nothing: no execution of their own.
    assert all(e["manifests_copied"] + e["manifests_skipped"] > 0 for e in done), done


def test_a_manual_pass_skips_what_the_target_has_and_mounts_within_it(
    api: httpx.Client, source: LiveServer, target: LiveServer
) -> None:
    shared, own = b"shared-layer" * 1000, b"own-layer" * 700
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    push(api, "acme/one", "v1", [shared, own])
    push(api, "acme/two", "v1", [shared])
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        put_blob(remote, "acme/one", shared)  # already on the target: skipped, not sent
    setup(api, target.url)  # on push, from now on: what was pushed before goes by a manual pass
    first = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True}).json()
    assert first["status"] == "succeeded", first
    assert first["blobs_skipped"] == 1  # the shared layer in acme/one
    assert first["blobs_mounted"] == 2  # the config and the shared layer, mounted from acme/one into acme/two
    assert first["blobs_copied"] == 2  # the config and own layer of acme/one
    assert first["bytes_copied"] == len(config) + len(own)
    assert first["manifests_copied"] == 2

    again = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True})
    assert again.status_code == 202, again.text
    second = again.json()
    assert second["status"] == "succeeded" and second["trigger"] == "manual"
    assert second["scope"] == "every tag * of acme/*"
    assert (second["bytes_copied"], second["manifests_copied"], second["manifests_skipped"]) == (0, 0, 2)


def test_a_killed_target_is_resumed_and_only_the_rest_is_counted(
    api: httpx.Client, source: LiveServer, killable: ServerProcess
) -> None:
    target = killable
    small, big = b"small" * 2000, bytes(range(256)) * (160 * 1024)  # 40 MiB: 40 PATCH chunks of 1 MiB
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    push(api, "acme/big", "v1", [small, big])
    setup(api, target.url)
    uploads = target.data_dir / "uploads"
    started = api.post("/api/v1/replication/rules/to-dr/run", json={})
    assert started.status_code == 202 and started.json()["status"] == "running", started.text

    def growing() -> bool:
        with contextlib.suppress(FileNotFoundError):  # a finished upload is renamed away
            return any(p.stat().st_size > 2 << 20 for p in uploads.iterdir() if p.is_file())
        return False

    wait_for(growing, timeout=60, what="the big blob's upload on the target", every=0.002)
    target.kill()
    failed = wait_for(lambda: [e for e in executions(api) if e["status"] == "failed"], what="a failed execution")[0]
    assert failed["error"] and failed["blobs_copied"] == 2 and failed["bytes_copied"] == len(config) + len(small)
    assert failed["manifests_copied"] == 0

    target.start()
    resumed = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True}).json()
    assert resumed["status"] == "succeeded", resumed
    assert (resumed["blobs_skipped"], resumed["blobs_copied"], resumed["bytes_copied"]) == (2, 1, len(big))
    with httpx.Client(base_url=target.url, timeout=60) as remote:
        assert manifest_on(remote, "acme/big", "v1") == manifest_on(api, "acme/big", "v1")
        assert remote.get(f"/v2/acme/big/blobs/{sha256(big)}").content == big


def test_deletes_are_mirrored_when_the_rule_says_so(api: httpx.Client, target: LiveServer) -> None:
    setup(api, target.url, mirror_deletes=True)
    first = push(api, "acme/llm", "v1", [b"one"])
    push(api, "acme/llm", "v2", [b"two"])
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        wait_for(lambda: manifest_on(remote, "acme/llm", "v2"), what="v2 on the target")
        wait_for(lambda: manifest_on(remote, "acme/llm", "v1"), what="v1 on the target")
        assert api.delete(f"/v2/acme/llm/manifests/{first}").status_code == 202
        wait_for(lambda: manifest_on(remote, "acme/llm", first) is None, what="v1 gone from the target")
        assert manifest_on(remote, "acme/llm", "v2")
    wait_for(lambda: any(e["deleted"] == 1 for e in executions(api)), what="the delete in an execution")


def test_deletes_are_not_mirrored_by_default(api: httpx.Client, target: LiveServer) -> None:
    setup(api, target.url)
    first = push(api, "acme/llm", "v1", [b"one"])
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        wait_for(lambda: manifest_on(remote, "acme/llm", "v1"), what="v1 on the target")
        assert api.delete(f"/v2/acme/llm/manifests/{first}").status_code == 202
        push(api, "acme/llm", "v2", [b"two"])  # a later push is replicated: the delete was seen and passed over
        wait_for(lambda: manifest_on(remote, "acme/llm", "v2"), what="v2 on the target")
        assert manifest_on(remote, "acme/llm", first) == first


def test_a_full_pass_deletes_selected_tags_the_source_no_longer_has(api: httpx.Client, target: LiveServer) -> None:
    push(api, "acme/llm", "v1", [b"one"])
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        stale = push(remote, "acme/llm", "v0", [b"zero"])  # on the target only: gone from the source
        push(remote, "acme/llm", "keep-me", [b"zero"])  # not selected by the rule: left alone
        setup(api, target.url, tags="v*", mirror_deletes=True)
        done = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True}).json()
        assert done["status"] == "succeeded" and done["deleted"] == 1, done
        assert manifest_on(remote, "acme/llm", "v1") and manifest_on(remote, "acme/llm", "keep-me") == stale
        assert manifest_on(remote, "acme/llm", "v0") is None


@pytest.mark.postgres
def test_on_push_replication_with_postgresql_metadata(postgres_url: str, target: LiveServer, tmp_path: Path) -> None:
    """The same leader job, cursor and tasks with the source's metadata on PostgreSQL (reads off
    the event loop there)."""
    with (
        live_server(data_dir=tmp_path / "pg-source", database_url=postgres_url, **FAST) as source,
        httpx.Client(base_url=source.url, timeout=60) as api,
        httpx.Client(base_url=target.url, timeout=30) as remote,
    ):
        setup(api, target.url)
        digest = push(api, "acme/llm", "v1", [b"weights" * 1000])
        wait_for(lambda: manifest_on(remote, "acme/llm", "v1") == digest, what="v1 on the target")
        done = wait_for(lambda: [e for e in executions(api) if e["status"] == "succeeded"], what="the execution")
        assert done[0]["trigger"] == "on_push" and done[0]["bytes_copied"] > 7000


def test_an_alias_moved_through_the_admin_api_is_replicated(api: httpx.Client, target: LiveServer) -> None:
    setup(api, target.url, tags="prod")
    first = push(api, "acme/llm", "v1", [b"one"])
    second = push(api, "acme/llm", "v2", [b"two"])  # v1, v2: not selected (tags="prod")
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        for digest, version in ((first, "v1"), (second, "v2")):
            moved = api.put("/api/v1/repositories/acme/llm/-/aliases/prod", json={"target": version})
            assert moved.status_code == 200, moved.text

            def moved_there(wanted: str = digest) -> bool:
                return manifest_on(remote, "acme/llm", "prod") == wanted

            wait_for(moved_there, what=f"prod -> {version}")
        assert manifest_on(remote, "acme/llm", "v2") is None


def test_a_new_leader_marks_a_stopped_leaders_executions_failed(tmp_path: Path) -> None:
    """An on-push execution left "running" by a server that died is failed, saying why, by the
    next leader's first tick (its tasks are still pending and retried)."""
    settings = Settings(data_dir=tmp_path / "source", fsync=False, auth_enabled=False)
    runtime = build_registry(settings)
    try:
        store = runtime.registry.replication.store
        assert store.create_target("dr", "http://127.0.0.1:9", None, None, True, None, None) is not None
        rule = store.create_rule(NewRule("to-dr", "dr", "acme/*"), None)
        assert not isinstance(rule, str)
        left = store.start_execution(rule.id, "on_push", "copy acme/llm:v1")
    finally:
        runtime.close()
    with live_server(data_dir=tmp_path / "source", **FAST) as source, httpx.Client(base_url=source.url) as api:
        record = wait_for(
            lambda: next((e for e in executions(api) if e["id"] == left and e["status"] == "failed"), None),
            what="the stale execution failed",
        )
        assert "interrupted" in record["error"] and record["finished_at"]


def test_a_target_whose_password_does_not_decrypt_fails_and_backs_off(
    api: httpx.Client, source: LiveServer, target: LiveServer
) -> None:
    """An execution that fails before its tasks (another server's secret_key sealed the password)
    says why, and its tasks wait their back-off like any failed copy instead of running each poll."""
    made = api.post("/api/v1/replication/targets", json={
        "name": "dr", "url": target.url, "username": "bot", "password": "sealed-elsewhere",
    })  # fmt: skip
    assert made.status_code == 201, made.text
    rule = {"name": "to-dr", "target": "dr", "repositories": "acme/*"}
    assert api.post("/api/v1/replication/rules", json=rule).status_code == 201
    engine = create_engine(source.settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(update(t.replication_targets).values(secret_ciphertext="v1." + "A" * 60))
    push(api, "acme/llm", "v1", [b"weights"])
    failed = wait_for(lambda: [e for e in executions(api) if e["status"] == "failed"], what="a failed execution")
    assert "SecretBoxError" in failed[0]["error"], failed
    time.sleep(1.0)  # ten polls of the leader; the retries wait 0.2, 0.4, 0.8 s
    assert len(executions(api)) <= 4
    with engine.connect() as conn:
        attempts, error = conn.execute(select(t.replication_tasks.c.attempts, t.replication_tasks.c.last_error)).one()
    engine.dispose()
    assert attempts >= 1 and "SecretBoxError" in error


def push_card(api: httpx.Client, repo: str, tag: str, text: bytes) -> str:
    """A model card (pushed by digest) referring to ``repo:tag``; its digest."""
    put_blob(api, repo, text)
    put_blob(api, repo, b"{}")
    body = api.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    subject = {"mediaType": OCI_MANIFEST, "digest": body.headers["Docker-Content-Digest"], "size": len(body.content)}
    card = image_manifest(
        b"{}", [text], config_type="application/vnd.oci.empty.v1+json", layer_type="text/markdown",
        subject=subject, artifact_type=CARD_TYPE,
    )  # fmt: skip
    return put_manifest(api, repo, sha256(card), card)


def test_a_referrer_goes_only_with_a_subject_the_rule_selects(api: httpx.Client, target: LiveServer) -> None:
    """A rule for ``release-*``: a card referring to ``dev-1`` copies neither the card nor the
    dev image (it would leave the registry by the back door); a card of ``release-1`` goes,
    with its subject."""
    setup(api, target.url, tags="release-*")
    dev = push(api, "acme/llm", "dev-1", [b"dev weights"])
    dev_card = push_card(api, "acme/llm", "dev-1", b"# dev card")
    release = push(api, "acme/llm", "release-1", [b"release weights"])
    release_card = push_card(api, "acme/llm", "release-1", b"# release card")
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        wait_for(lambda: manifest_on(remote, "acme/llm", release_card) == release_card, what="the release card")
        # The tag is its own on-push task: it may land after the card (which brought its subject).
        wait_for(lambda: manifest_on(remote, "acme/llm", "release-1") == release, what="the release tag")
        assert manifest_on(remote, "acme/llm", dev_card) is None
        assert manifest_on(remote, "acme/llm", dev) is None
        assert remote.get(f"/v2/acme/llm/blobs/{sha256(b'dev weights')}").status_code == 404
    noted = wait_for(
        lambda: [e for e in executions(api) if "skipped referrer" in (e["scope"] or "")], what="the skip noted"
    )
    assert dev_card in noted[0]["scope"] and noted[0]["status"] == "succeeded", noted


@pytest.mark.postgres
def test_a_full_pass_of_long_patterns_runs_on_postgresql(postgres_url: str, target: LiveServer, tmp_path: Path) -> None:
    """Two 300-character patterns make a full pass's scope longer than its 600-character column;
    PostgreSQL refuses such a value, so the run answered 500 and a schedule died quietly. The
    scope is cut to the column, ending in an ellipsis, and the pass runs."""
    repositories, tags = "acme/" + "*" * 295, "*" * 300  # the longest patterns a rule may have
    with (
        live_server(data_dir=tmp_path / "pg-source", database_url=postgres_url, **FAST) as source,
        httpx.Client(base_url=source.url, timeout=60) as api,
    ):
        setup(api, target.url, repositories=repositories, tags=tags, mirror_deletes=True, on_push=False)
        ran = api.post("/api/v1/replication/rules/to-dr/run", json={"wait": True})
        assert ran.status_code == 202, ran.text
        done = ran.json()
        assert done["status"] == "succeeded", done
        assert len(done["scope"]) == 600 and done["scope"].endswith("\u2026"), done["scope"]


def test_a_delete_retried_after_a_re_push_leaves_the_tag(tmp_path: Path, target: LiveServer) -> None:
    """A mirrored tag delete fails (the target is away) and waits its back-off; meanwhile the
    tag is pushed again at the source and copied. The retried delete asks the source first and
    leaves the target's tag alone."""
    slow_retry = {**FAST, "replication_retry_base": 3.0, "replication_retry_max": 3.0}
    with (
        live_server(data_dir=tmp_path / "source", **slow_retry) as source,
        httpx.Client(base_url=source.url, timeout=60) as api,
        httpx.Client(base_url=target.url, timeout=30) as remote,
    ):
        setup(api, target.url, mirror_deletes=True)
        push(api, "acme/llm", "v1", [b"one"])
        wait_for(lambda: manifest_on(remote, "acme/llm", "v1"), what="v1 on the target")
        engine = create_engine(source.settings.resolved_database_url)
        try:
            with engine.begin() as conn:
                conn.execute(update(t.replication_targets).values(url="http://127.0.0.1:9"))  # nothing listens
            assert api.delete("/v2/acme/llm/manifests/v1").status_code == 202
            tasks = t.replication_tasks.c

            def delete_failed() -> bool:
                with engine.connect() as conn:
                    row = conn.execute(select(tasks.attempts).where(tasks.action == "delete")).first()
                return row is not None and row.attempts >= 1

            wait_for(delete_failed, what="the delete to fail once")
            with engine.begin() as conn:
                conn.execute(update(t.replication_targets).values(url=target.url))
            again = push(api, "acme/llm", "v1", [b"one again"])
            wait_for(lambda: manifest_on(remote, "acme/llm", "v1") == again, what="the re-push on the target")

            def delete_done() -> bool:
                with engine.connect() as conn:
                    row = conn.execute(select(tasks.state).where(tasks.action == "delete")).one()
                return bool(row.state != "pending")

            wait_for(delete_done, what="the delete's retry")
        finally:
            engine.dispose()
        assert manifest_on(remote, "acme/llm", "v1") == again

        # The execution's record is finished a moment after the task leaves "pending": wait for it.
        def noted() -> list[dict[str, Any]]:
            found = [e for e in executions(api) if "skipped delete of acme/llm:v1" in (e["scope"] or "")]
            return [e for e in found if e["status"] != "running"]

        skipped = wait_for(noted, what="the execution noting the skipped delete")
        assert skipped[0]["status"] == "succeeded", executions(api)


def test_a_digest_delete_under_no_selected_tag_is_not_mirrored(api: httpx.Client, target: LiveServer) -> None:
    """A rule for ``release-*`` with mirrored deletes: a ``dev-1`` manifest deleted by digest at
    the source (retention's or a client's) stays on the target, where someone else tagged it;
    a ``release-1`` one deleted by digest goes."""
    setup(api, target.url, tags="release-*", mirror_deletes=True)
    dev = push(api, "acme/llm", "dev-1", [b"dev weights"])
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        assert push(remote, "acme/llm", "dev-1", [b"dev weights"]) == dev  # on the target by other means
        release = push(api, "acme/llm", "release-1", [b"release weights"])
        wait_for(lambda: manifest_on(remote, "acme/llm", "release-1") == release, what="release-1 on the target")
        assert api.delete(f"/v2/acme/llm/manifests/{dev}").status_code == 202
        assert api.delete(f"/v2/acme/llm/manifests/{release}").status_code == 202
        wait_for(lambda: manifest_on(remote, "acme/llm", release) is None, what="release-1 gone from the target")
        assert manifest_on(remote, "acme/llm", "dev-1") == dev


def test_disabling_a_rule_drops_its_queued_deletes(api: httpx.Client, source: LiveServer, target: LiveServer) -> None:
    """A mirrored delete waits for a retry (the target is away); the admin disables the rule.
    When the target is back, the queued delete does not run: the task fails, saying why."""
    setup(api, target.url, mirror_deletes=True)
    digest = push(api, "acme/llm", "v1", [b"one"])
    engine = create_engine(source.settings.resolved_database_url)
    tasks = t.replication_tasks.c
    with httpx.Client(base_url=target.url, timeout=30) as remote:
        wait_for(lambda: manifest_on(remote, "acme/llm", "v1") == digest, what="v1 on the target")
        try:
            with engine.begin() as conn:
                conn.execute(update(t.replication_targets).values(url="http://127.0.0.1:9"))  # nothing listens
            assert api.delete(f"/v2/acme/llm/manifests/{digest}").status_code == 202

            def delete_task() -> Any:
                with engine.connect() as conn:
                    return conn.execute(select(tasks.state, tasks.last_error).where(tasks.action == "delete")).first()

            wait_for(lambda: (row := delete_task()) is not None and row.last_error, what="the delete to fail once")
            assert api.patch("/api/v1/replication/rules/to-dr", json={"enabled": False}).status_code == 200
            with engine.begin() as conn:
                conn.execute(update(t.replication_targets).values(url=target.url))
            row = wait_for(lambda: (row := delete_task()).state != "pending" and row, what="the delete task to end")
        finally:
            engine.dispose()
        assert row.state == "failed" and "disabled" in row.last_error, row
        assert manifest_on(remote, "acme/llm", "v1") == digest
