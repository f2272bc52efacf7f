"""The event outbox (``domain/events.py``), on SQLite and PostgreSQL: an event is written in the
transaction of the change it describes -- committed, it is there exactly once; refused or rolled
back, it is absent -- and it reads back as the same typed event."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import func, select

from modelyard.domain.events import (
    Actor,
    BlobDeleted,
    CompartmentCreated,
    Event,
    IamPolicyChanged,
    LoginFailed,
    ManifestDeleted,
    ManifestPushed,
    PrincipalCreated,
    RepositoryCreated,
    RepositoryDeleted,
    TagDeleted,
    TagMoved,
)
from modelyard.domain.records import (
    AlreadyExistsError,
    ImmutableTagError,
    MissingBlobsError,
    NewManifest,
    NotEmptyError,
    RepositorySettings,
)
from modelyard.metadata import tables as t
from modelyard.metadata.sql import SqlMetadataStore
from tests.helpers import OCI_MANIFEST, sha256

REPO = "acme/llm"
ALICE = Actor("user:alice", "10.0.0.7")


def manifest(label: str, blob_refs: Sequence[str] = ()) -> NewManifest:
    content = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "label": label}).encode()
    return NewManifest(
        digest=sha256(content), media_type=OCI_MANIFEST, content=content, artifact_type=None, subject=None,
        annotations=None, blob_refs=blob_refs,
    )  # fmt: skip


def pushed(m: NewManifest, tag: str) -> ManifestPushed:
    return ManifestPushed(
        actor=ALICE, repository=REPO, reference=tag, digest=m.digest, media_type=OCI_MANIFEST, tag=tag
    )


def events(store: SqlMetadataStore) -> list[Event]:
    return [event for _, event in store.audit.after(0, 1000)]


def row_count(store: SqlMetadataStore) -> int:
    with store.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.audit_events)).scalar_one())


def test_a_committed_push_records_its_event_once_and_it_reads_back_typed(store: SqlMetadataStore) -> None:
    m = manifest("v1")
    event = pushed(m, "v1")
    store.manifests.put(REPO, m, "v1", events=lambda previous: [event])
    assert events(store) == [event]
    ((_, back),) = store.audit.after(0, 10)
    assert isinstance(back, ManifestPushed) and back.actor == ALICE and back.tag == "v1"
    record = store.audit.query(10, None, None, None)[0]
    assert (record.actor, record.action, record.resource, record.outcome, record.client_ip) == (
        "user:alice", "push", f"{REPO}:v1", "success", "10.0.0.7",
    )  # fmt: skip
    assert record.detail == {"digest": m.digest, "media_type": OCI_MANIFEST}


def test_a_push_refused_inside_its_transaction_records_nothing(store: SqlMetadataStore) -> None:
    missing_blob = sha256(b"never pushed")
    m = manifest("needs a blob", blob_refs=[missing_blob])
    with pytest.raises(MissingBlobsError):
        store.manifests.put(REPO, m, "v1", events=lambda previous: [pushed(m, "v1")])
    assert row_count(store) == 0

    first, second = manifest("first"), manifest("second")
    kept, refused = pushed(first, "prod"), pushed(second, "prod")
    store.manifests.put(REPO, first, "prod", events=lambda previous: [kept])
    with pytest.raises(ImmutableTagError):  # the tag may not move: the whole put rolls back
        store.manifests.put(REPO, second, "prod", tag_immutable=True, events=lambda previous: [refused])
    assert events(store) == [kept]
    assert store.manifests.get(REPO, second.digest) is None


def test_the_put_is_told_what_the_tag_pointed_to(store: SqlMetadataStore) -> None:
    a, b = manifest("a"), manifest("b")
    seen: list[str | None] = []

    def record(m: NewManifest) -> Callable[[str | None], Sequence[Event]]:
        def build(previous: str | None) -> list[Event]:
            seen.append(previous)
            moved = [] if previous in (None, m.digest) else [
                TagMoved(actor=ALICE, repository=REPO, tag="prod", from_digest=str(previous), to_digest=m.digest)
            ]  # fmt: skip
            return [pushed(m, "prod"), *moved]

        return build

    store.manifests.put(REPO, a, "prod", events=record(a))
    store.manifests.put(REPO, b, "prod", events=record(b))
    store.manifests.put(REPO, b, "prod", events=record(b))
    assert seen == [None, a.digest, b.digest]
    moves = [e for e in events(store) if isinstance(e, TagMoved)]
    assert [(e.from_digest, e.to_digest) for e in moves] == [(a.digest, b.digest)]


def test_deletes_record_only_what_they_deleted(store: SqlMetadataStore) -> None:
    m = manifest("x")
    store.manifests.put(REPO, m, "v1")
    assert row_count(store) == 0, "a write given no events records none"
    tag_gone = TagDeleted(actor=ALICE, repository=REPO, tag="v1")
    assert store.tags.delete(REPO, "v1", events=[tag_gone]) is True
    assert store.tags.delete(REPO, "v1", events=[tag_gone]) is False  # nothing to end: nothing recorded
    manifest_gone = ManifestDeleted(actor=ALICE, repository=REPO, digest=m.digest)
    assert store.manifests.delete(REPO, m.digest, events=[manifest_gone]) is True
    assert store.manifests.delete(REPO, m.digest, events=[manifest_gone]) is False
    blob = sha256(b"layer")
    store.blobs.link(REPO, blob, 5)
    blob_gone = BlobDeleted(actor=ALICE, repository=REPO, digest=blob)
    assert store.blobs.unlink(REPO, blob, events=[blob_gone]) is True
    assert store.blobs.unlink(REPO, blob, events=[blob_gone]) is False
    assert events(store) == [tag_gone, manifest_gone, blob_gone]


def test_control_plane_changes_commit_or_roll_back_with_their_events(store: SqlMetadataStore) -> None:
    created = CompartmentCreated(actor=ALICE, compartment="acme")
    store.compartments.create("acme", "", None, events=[created])
    with pytest.raises(AlreadyExistsError):
        store.compartments.create("acme", "", None, events=[created])
    repo = RepositoryCreated(actor=ALICE, repository=REPO)
    store.repo_admin.create(REPO, RepositorySettings(), "user:alice", create_compartment=False, events=[repo])
    with pytest.raises(LookupError):  # no such compartment: refused inside the transaction
        store.repo_admin.create(
            "nowhere/llm", RepositorySettings(), None, create_compartment=False,
            events=[RepositoryCreated(actor=ALICE, repository="nowhere/llm")],
        )  # fmt: skip
    with pytest.raises(NotEmptyError):
        store.compartments.delete("acme", events=[CompartmentCreated(actor=ALICE, compartment="never")])
    policy = IamPolicyChanged(actor=ALICE, target=f"repository:{REPO}", bindings=(("reader", ("user:bob",)),))
    store.policies.put(f"repository:{REPO}", [{"role": "reader", "members": ["user:bob"]}], 0, events=[policy])
    gone = RepositoryDeleted(actor=ALICE, repository=REPO)
    assert store.repo_admin.delete(REPO, events=[gone]) is True
    user = PrincipalCreated(actor=ALICE, principal="user:carol")
    store.principals.create_user("carol", "carol@example.com", "hash", events=[user])
    with pytest.raises(AlreadyExistsError):
        store.principals.create_user("carol", "carol@example.com", "hash", events=[user])
    assert events(store) == [created, repo, policy, gone, user]
    back = events(store)[2]
    assert isinstance(back, IamPolicyChanged) and back.bindings == (("reader", ("user:bob",)),)


def test_events_without_a_change_are_written_alone_and_the_audit_log_reads_them(store: SqlMetadataStore) -> None:
    failed = LoginFailed(actor=Actor("mallory", "10.9.9.9"), reason="UNAUTHORIZED")
    store.audit.record([failed])
    store.audit.record([])
    assert events(store) == [failed]
    (record,) = store.audit.query(10, None, "mallory", "login")
    assert (record.outcome, record.detail, record.resource) == ("failure", {"reason": "UNAUTHORIZED"}, "registry")
    assert store.audit.after(store.audit.query(1, None, None, None)[0].id, 10) == []
