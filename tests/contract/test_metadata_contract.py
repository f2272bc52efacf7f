"""The metadata store's contract (metadata/base.py), run against SQLite and PostgreSQL alike.

Each test gets a fresh, migrated database (see ``conftest.py``) and speaks only through the
protocols, except where a promise is about rows (one current tag, references kept with their
manifest) and the tables are the only witness.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from modelyard.domain.records import MissingBlobsError, MissingManifestsError, NewManifest, ReferencedManifestError
from modelyard.metadata import tables as t
from modelyard.metadata.migrations import alembic_config, upgrade
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from tests.helpers import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, sha256

REPO = "acme/llm"
OTHER = "acme/other"

# Names whose bytewise order differs from a linguistic (ICU/glibc en_US) order: punctuation
# and digits sort by byte value here ('-' < '.' < '/' < digits < '_' < letters).
REPOSITORY_NAMES = ["a_b", "a-b", "a.b", "a/b", "a0", "a9", "a10", "ab", "a", "b-1", "b_1", "b.1", "b1", "z/a"]
# Tags: case-insensitive, then bytewise within equal lowercase ("A" before "a").
TAG_NAMES = ["b", "A", "a", "B", "latest", "Latest", "v1.0", "v1-0", "v1_0", "V2", "v10", "10", "9", "_x", "x"]


def manifest(
    label: str,
    *,
    artifact_type: str | None = None,
    subject: str | None = None,
    annotations: dict[str, str] | None = None,
    blob_refs: Sequence[str] = (),
) -> NewManifest:
    """A small manifest whose digest is the real SHA-256 of its content."""
    content = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "label": label}).encode()
    return NewManifest(
        digest=sha256(content),
        media_type=OCI_MANIFEST,
        content=content,
        artifact_type=artifact_type,
        subject=subject,
        annotations=annotations,
        blob_refs=blob_refs,
    )


def blob_digest(label: str) -> str:
    return sha256(label.encode())


def current_tag_rows(store: SqlMetadataStore, repository: str, tag: str) -> int:
    query = (
        select(func.count())
        .select_from(t.tags.join(t.repositories, t.repositories.c.id == t.tags.c.repository_id))
        .where(t.repositories.c.name == repository, t.tags.c.name == tag, t.tags.c.lifetime_end.is_(None))
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def page_through(fetch: Callable[[int | None, str | None], list[str]], size: int) -> list[str]:
    """Every item, fetched ``size`` at a time by passing the previous page's last item."""
    seen: list[str] = []
    last: str | None = None
    while True:
        page = fetch(size, last)
        assert len(page) <= size
        seen += page
        if len(page) < size:
            return seen
        last = page[-1]


def assert_recent(value: datetime) -> None:
    assert value.tzinfo is not None, "timestamps come back timezone-aware (UTC)"
    assert abs(datetime.now(UTC) - value) < timedelta(minutes=5)


def race(workers: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``workers`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]


# --- repositories -------------------------------------------------------------------------------


def test_ensure_creates_once_and_get_finds_it(store: SqlMetadataStore) -> None:
    assert store.repositories.get(REPO) is None
    created = store.repositories.ensure(REPO)
    assert created.name == REPO
    assert_recent(created.created_at)
    again = store.repositories.ensure(REPO)
    assert (again.id, again.created_at) == (created.id, created.created_at)
    found = store.repositories.get(REPO)
    assert found is not None and found.id == created.id
    assert store.repositories.get("acme") is None


def test_repository_names_list_bytewise_and_paginate_with_last(store: SqlMetadataStore) -> None:
    for name in REPOSITORY_NAMES:
        store.repositories.ensure(name)
    expected = sorted(REPOSITORY_NAMES, key=lambda name: name.encode())
    assert store.repositories.list_names(None, None) == expected
    assert store.repositories.list_names(3, None) == expected[:3]
    for size in (1, 2, 5):
        assert page_through(store.repositories.list_names, size) == expected
    for i, last in enumerate(expected):
        assert store.repositories.list_names(None, last) == expected[i + 1 :]
    # ``last`` need not be a name that exists: strictly after it in the same order.
    assert store.repositories.list_names(None, "a1") == [n for n in expected if n.encode() > b"a1"]
    assert store.repositories.list_names(2, "zz") == []


def test_empty_registry_lists_nothing(store: SqlMetadataStore) -> None:
    assert store.repositories.list_names(None, None) == []
    assert store.tags.list_names(REPO, None, None) == []


# --- blob links ---------------------------------------------------------------------------------


def test_link_makes_blob_visible_in_that_repository_only(store: SqlMetadataStore) -> None:
    digest = blob_digest("layer")
    assert store.blobs.linked_size(REPO, digest) is None
    assert store.blobs.stored_size(digest) is None
    store.blobs.link(REPO, digest, 1234)
    assert store.blobs.linked_size(REPO, digest) == 1234
    assert store.blobs.stored_size(digest) == 1234
    assert store.repositories.get(REPO) is not None, "link creates the repository"
    store.repositories.ensure(OTHER)
    assert store.blobs.linked_size(OTHER, digest) is None
    assert store.blobs.missing(OTHER, [digest]) == [digest]


def test_link_is_idempotent_and_the_second_repository_shares_the_blob(store: SqlMetadataStore) -> None:
    digest = blob_digest("shared")
    store.blobs.link(REPO, digest, 10)
    store.blobs.link(REPO, digest, 10)
    store.blobs.link(OTHER, digest, 10)
    assert store.blobs.linked_size(REPO, digest) == 10
    assert store.blobs.linked_size(OTHER, digest) == 10
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.blobs)).scalar_one() == 1


def test_blob_sizes_beyond_32_bits_round_trip(store: SqlMetadataStore) -> None:
    digest = blob_digest("weights")
    size = 70 * 1024**3
    store.blobs.link(REPO, digest, size)
    assert store.blobs.linked_size(REPO, digest) == size
    assert store.blobs.stored_size(digest) == size


def test_unlink_removes_the_link_but_keeps_the_blob(store: SqlMetadataStore) -> None:
    digest = blob_digest("layer")
    store.blobs.link(REPO, digest, 5)
    store.blobs.link(OTHER, digest, 5)
    assert store.blobs.unlink(REPO, digest) is True
    assert store.blobs.linked_size(REPO, digest) is None
    assert store.blobs.linked_size(OTHER, digest) == 5
    assert store.blobs.stored_size(digest) == 5, "bytes stay for garbage collection"
    assert store.blobs.unlink(REPO, digest) is False
    assert store.blobs.unlink("nobody/here", digest) is False


def test_missing_blobs_keep_the_callers_order(store: SqlMetadataStore) -> None:
    a, b, c, d = (blob_digest(x) for x in "abcd")
    store.blobs.link(REPO, b, 1)
    store.blobs.link(REPO, d, 1)
    store.blobs.link(OTHER, c, 1)
    assert store.blobs.missing(REPO, [d, c, b, a]) == [c, a]
    assert store.blobs.missing(REPO, [a, b, c]) == [a, c]
    assert store.blobs.missing(REPO, [b, d]) == []
    assert store.blobs.missing(REPO, []) == []
    assert store.blobs.missing("nobody/here", [b, a]) == [b, a]


# --- uploads ------------------------------------------------------------------------------------


def test_upload_session_lifecycle(store: SqlMetadataStore) -> None:
    created = store.uploads.create("u1", REPO)
    assert (created.id, created.repository, created.offset) == ("u1", REPO, 0)
    assert store.repositories.get(REPO) is not None, "an upload creates its repository"
    got = store.uploads.get("u1")
    assert got is not None
    assert (got.id, got.repository, got.offset) == ("u1", REPO, 0)
    assert_recent(got.created_at)
    assert got.updated_at >= got.created_at
    assert store.uploads.get("nope") is None


def test_set_offset_is_compare_and_set(store: SqlMetadataStore) -> None:
    store.uploads.create("u1", REPO)
    assert store.uploads.set_offset("u1", 0, 100) is True
    assert store.uploads.set_offset("u1", 0, 200) is False, "a stale expected offset loses"
    got = store.uploads.get("u1")
    assert got is not None and got.offset == 100
    assert store.uploads.set_offset("u1", 100, 5 * 1024**3) is True
    got = store.uploads.get("u1")
    assert got is not None and got.offset == 5 * 1024**3
    assert store.uploads.set_offset("nope", 0, 1) is False


def test_concurrent_set_offset_has_exactly_one_winner(store: SqlMetadataStore) -> None:
    store.uploads.create("u1", REPO)
    wins: list[int] = []

    def work(i: int) -> None:
        if store.uploads.set_offset("u1", 0, 100 + i):
            wins.append(i)

    race(6, work)
    assert len(wins) == 1
    got = store.uploads.get("u1")
    assert got is not None and got.offset == 100 + wins[0]


def test_complete_links_the_blob_and_ends_the_session(store: SqlMetadataStore) -> None:
    digest = blob_digest("uploaded")
    store.uploads.create("u1", REPO)
    store.uploads.set_offset("u1", 0, 42)
    store.uploads.complete("u1", digest, 42)
    assert store.uploads.get("u1") is None
    assert store.blobs.linked_size(REPO, digest) == 42
    assert store.blobs.linked_size(OTHER, digest) is None
    assert store.uploads.delete("u1") is False


def test_complete_of_an_ended_session_links_nothing(store: SqlMetadataStore) -> None:
    digest = blob_digest("late")
    store.uploads.create("u1", REPO)
    assert store.uploads.delete("u1") is True
    store.uploads.complete("u1", digest, 7)
    assert store.blobs.linked_size(REPO, digest) is None
    assert store.blobs.stored_size(digest) is None


def test_delete_upload(store: SqlMetadataStore) -> None:
    store.uploads.create("u1", REPO)
    store.uploads.create("u2", REPO)
    assert store.uploads.delete("u1") is True
    assert store.uploads.get("u1") is None
    assert store.uploads.get("u2") is not None
    assert store.uploads.delete("u1") is False


# --- manifests ----------------------------------------------------------------------------------


def test_put_then_get_returns_every_field(store: SqlMetadataStore) -> None:
    subject = manifest("subject")
    m = manifest(
        "card",
        artifact_type="application/vnd.example.card",
        subject=subject.digest,
        annotations={"org.opencontainers.image.title": "model card", "é": "ü"},
    )
    store.manifests.put(REPO, m, None)
    got = store.manifests.get(REPO, m.digest)
    assert got is not None
    assert got.digest == m.digest
    assert got.media_type == OCI_MANIFEST
    assert got.size == len(m.content)
    assert got.content == m.content and isinstance(got.content, bytes)
    assert got.artifact_type == "application/vnd.example.card"
    assert got.subject == subject.digest
    assert got.annotations == {"org.opencontainers.image.title": "model card", "é": "ü"}
    assert_recent(got.created_at)
    assert store.manifests.get(OTHER, m.digest) is None
    assert store.manifests.get(REPO, manifest("other").digest) is None


def test_put_without_optional_fields(store: SqlMetadataStore) -> None:
    m = manifest("plain")
    store.manifests.put(REPO, m, None)
    got = store.manifests.get(REPO, m.digest)
    assert got is not None
    assert (got.artifact_type, got.subject, got.annotations) == (None, None, None)
    assert store.tags.list_names(REPO, None, None) == []


def test_put_is_idempotent(store: SqlMetadataStore) -> None:
    layer, config = blob_digest("layer"), blob_digest("config")
    store.blobs.link(REPO, layer, 5)
    store.blobs.link(REPO, config, 2)
    m = manifest("image", blob_refs=[config, layer])
    store.manifests.put(REPO, m, "v1")
    first = store.manifests.get(REPO, m.digest)
    store.manifests.put(REPO, m, "v1")
    store.manifests.put(REPO, m, None)
    again = store.manifests.get(REPO, m.digest)
    assert first is not None and again == first, "a re-put changes nothing, not even created_at"
    assert len(store.tags.history(REPO, "v1")) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.manifests)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(t.manifest_references)).scalar_one() == 2


def test_put_refuses_blobs_not_linked_into_the_repository(store: SqlMetadataStore) -> None:
    """Checked inside the put's transaction, so a concurrent garbage collection can't slip in."""
    linked, elsewhere = blob_digest("linked"), blob_digest("elsewhere")
    store.blobs.link(REPO, linked, 1)
    store.blobs.link("other/repo", elsewhere, 1)
    m = manifest("needs-both", blob_refs=[linked, elsewhere])
    with pytest.raises(MissingBlobsError) as caught:
        store.manifests.put(REPO, m, "v1")
    assert caught.value.digests == [elsewhere]
    assert store.manifests.get(REPO, m.digest) is None
    assert store.tags.list_names(REPO, None, None) == []


def test_put_records_references_and_delete_drops_them(store: SqlMetadataStore) -> None:
    child_a, child_b = manifest("amd64"), manifest("arm64")
    store.blobs.link(REPO, blob_digest("attestation"), 7)
    store.manifests.put(REPO, child_a, None)
    store.manifests.put(REPO, child_b, None)
    content = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "label": "index"}).encode()
    index = NewManifest(
        digest=sha256(content),
        media_type=OCI_INDEX,
        content=content,
        manifest_refs=[child_a.digest, child_b.digest],
        blob_refs=[blob_digest("attestation")],
    )
    store.manifests.put(REPO, index, "multi")
    refs = (
        select(t.manifest_references.c.digest, t.manifest_references.c.is_manifest)
        .join(t.manifests, t.manifests.c.id == t.manifest_references.c.manifest_id)
        .where(t.manifests.c.digest == index.digest)
    )
    with store.engine.connect() as conn:
        assert {tuple(row) for row in conn.execute(refs)} == {
            (child_a.digest, 1),
            (child_b.digest, 1),
            (blob_digest("attestation"), 0),
        }
    assert store.manifests.delete(REPO, index.digest) is True
    with store.engine.connect() as conn:
        assert conn.execute(refs).all() == []
        assert conn.execute(select(func.count()).select_from(t.manifest_references)).scalar_one() == 0


def index_of(label: str, children: Sequence[NewManifest]) -> NewManifest:
    content = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "label": label}).encode()
    return NewManifest(
        digest=sha256(content),
        media_type=OCI_INDEX,
        content=content,
        manifest_refs=[child.digest for child in children],
    )


def test_a_manifest_an_index_lists_is_kept_until_the_index_goes(store: SqlMetadataStore) -> None:
    child, sibling = manifest("amd64"), manifest("arm64")
    store.manifests.put(REPO, child, None)
    store.manifests.put(REPO, sibling, None)
    store.manifests.put(OTHER, child, "v1")
    first, second = index_of("first", [child, sibling]), index_of("second", [child])
    store.manifests.put(REPO, first, "multi")
    store.manifests.put(REPO, second, None)
    with pytest.raises(ReferencedManifestError) as caught:
        store.manifests.delete(REPO, child.digest)
    assert caught.value.digest == child.digest
    assert caught.value.indexes == sorted([first.digest, second.digest])
    assert store.manifests.get(REPO, child.digest) is not None
    assert store.manifests.delete(OTHER, child.digest) is True, "an index elsewhere holds nothing here"
    assert store.manifests.delete(REPO, first.digest) is True
    with pytest.raises(ReferencedManifestError) as caught:
        store.manifests.delete(REPO, child.digest)
    assert caught.value.indexes == [second.digest]
    assert store.manifests.delete(REPO, sibling.digest) is True
    assert store.manifests.delete(REPO, second.digest) is True
    assert store.manifests.delete(REPO, child.digest) is True


def test_put_refuses_an_index_whose_children_are_not_in_the_repository(store: SqlMetadataStore) -> None:
    """Checked inside the put's transaction, so a concurrent delete of a child can't slip in."""
    here, elsewhere = manifest("here"), manifest("elsewhere")
    store.manifests.put(REPO, here, None)
    store.manifests.put(OTHER, elsewhere, None)
    index = index_of("index", [here, elsewhere])
    with pytest.raises(MissingManifestsError) as caught:
        store.manifests.put(REPO, index, "multi")
    assert caught.value.digests == [elsewhere.digest]
    assert store.manifests.get(REPO, index.digest) is None
    assert store.tags.list_names(REPO, None, None) == []


def test_same_manifest_in_two_repositories_is_two_records(store: SqlMetadataStore) -> None:
    m = manifest("image")
    store.manifests.put(REPO, m, "v1")
    store.manifests.put(OTHER, m, "v1")
    assert store.manifests.delete(REPO, m.digest) is True
    assert store.manifests.get(REPO, m.digest) is None
    assert store.manifests.get(OTHER, m.digest) is not None
    resolved = store.manifests.resolve_tag(OTHER, "v1")
    assert resolved is not None and resolved.digest == m.digest


def test_resolve_tag(store: SqlMetadataStore) -> None:
    m = manifest("image")
    store.manifests.put(REPO, m, "v1")
    resolved = store.manifests.resolve_tag(REPO, "v1")
    assert resolved is not None and resolved.digest == m.digest and resolved.content == m.content
    assert store.manifests.resolve_tag(REPO, "v2") is None
    assert store.manifests.resolve_tag(REPO, "V1") is None, "tags are case-sensitive"
    assert store.manifests.resolve_tag(OTHER, "v1") is None


def test_missing_manifests_keep_the_callers_order(store: SqlMetadataStore) -> None:
    a, b, c = manifest("a"), manifest("b"), manifest("c")
    store.manifests.put(REPO, b, None)
    store.manifests.put(OTHER, c, None)
    assert store.manifests.missing(REPO, [c.digest, b.digest, a.digest]) == [c.digest, a.digest]
    assert store.manifests.missing(REPO, [b.digest]) == []
    assert store.manifests.missing(REPO, []) == []
    assert store.manifests.missing("nobody/here", [a.digest]) == [a.digest]


def test_delete_manifest_ends_every_tag_on_it_and_keeps_history(store: SqlMetadataStore) -> None:
    m, keep = manifest("doomed"), manifest("kept")
    store.manifests.put(REPO, m, "v1")
    store.manifests.put(REPO, m, "latest")
    store.manifests.put(REPO, keep, "stable")
    assert store.manifests.delete(REPO, m.digest) is True
    assert store.manifests.get(REPO, m.digest) is None
    assert store.manifests.resolve_tag(REPO, "v1") is None
    assert store.manifests.resolve_tag(REPO, "latest") is None
    assert store.tags.list_names(REPO, None, None) == ["stable"]
    for tag in ("v1", "latest"):
        (lifetime,) = store.tags.history(REPO, tag)
        assert lifetime.digest == m.digest
        assert lifetime.end is not None and lifetime.end >= lifetime.start
    assert store.tags.history(REPO, "stable")[0].end is None
    assert store.manifests.delete(REPO, m.digest) is False
    assert store.manifests.delete("nobody/here", m.digest) is False


def test_referrers_with_and_without_artifact_type(store: SqlMetadataStore) -> None:
    subject, unrelated = manifest("model"), manifest("unrelated")
    card = manifest("card", subject=subject.digest, artifact_type="application/vnd.example.card")
    evals = manifest("eval", subject=subject.digest, artifact_type="application/vnd.example.eval")
    sig = manifest("sig", subject=subject.digest, artifact_type=OCI_CONFIG)
    elsewhere = manifest("card-elsewhere", subject=subject.digest, artifact_type="application/vnd.example.card")
    other_subject = manifest("other-card", subject=unrelated.digest, artifact_type="application/vnd.example.card")
    for m in (subject, unrelated, card, evals, sig, other_subject):
        store.manifests.put(REPO, m, None)
    store.manifests.put(OTHER, elsewhere, None)

    def digests(artifact_type: str | None) -> set[str]:
        return {r.digest for r in store.manifests.referrers(REPO, subject.digest, artifact_type)}

    assert digests(None) == {card.digest, evals.digest, sig.digest}
    assert digests("application/vnd.example.card") == {card.digest}
    assert digests("application/vnd.example.none") == set()
    records = store.manifests.referrers(REPO, subject.digest, "application/vnd.example.eval")
    assert [(r.digest, r.artifact_type, r.subject) for r in records] == [
        (evals.digest, "application/vnd.example.eval", subject.digest)
    ]
    assert store.manifests.referrers(REPO, manifest("nothing").digest, None) == []
    assert store.manifests.referrers("nobody/here", subject.digest, None) == []


# --- tags ---------------------------------------------------------------------------------------


def test_moving_a_tag_ends_one_lifetime_and_starts_another(store: SqlMetadataStore) -> None:
    v1, v2, v3 = manifest("1"), manifest("2"), manifest("3")
    store.manifests.put(REPO, v1, "prod")
    store.manifests.put(REPO, v2, "prod")
    store.manifests.put(REPO, v3, "prod")
    resolved = store.manifests.resolve_tag(REPO, "prod")
    assert resolved is not None and resolved.digest == v3.digest
    history = store.tags.history(REPO, "prod")
    assert [h.digest for h in history] == [v3.digest, v2.digest, v1.digest], "newest first"
    assert all(h.name == "prod" for h in history)
    assert history[0].end is None
    for newer, older in itertools.pairwise(history):
        assert older.end is not None, "the old lifetime is ended"
        assert older.end == newer.start, "no gap: the tag always pointed somewhere"
        assert older.start <= older.end
        assert older.start.tzinfo is not None and older.end.tzinfo is not None
    assert store.manifests.get(REPO, v1.digest) is not None, "moving a tag keeps the old manifest"
    assert current_tag_rows(store, REPO, "prod") == 1


def test_repointing_a_tag_at_the_same_digest_adds_no_history(store: SqlMetadataStore) -> None:
    m = manifest("same")
    store.manifests.put(REPO, m, "v1")
    before = store.tags.history(REPO, "v1")
    store.manifests.put(REPO, m, "v1")
    assert store.tags.history(REPO, "v1") == before
    assert len(before) == 1 and before[0].end is None


def test_moving_back_to_an_earlier_digest_is_a_new_lifetime(store: SqlMetadataStore) -> None:
    a, b = manifest("a"), manifest("b")
    store.manifests.put(REPO, a, "prod")
    store.manifests.put(REPO, b, "prod")
    store.manifests.put(REPO, a, "prod")  # rollback
    assert [h.digest for h in store.tags.history(REPO, "prod")] == [a.digest, b.digest, a.digest]
    resolved = store.manifests.resolve_tag(REPO, "prod")
    assert resolved is not None and resolved.digest == a.digest


def test_tag_names_list_case_insensitively_and_paginate_with_last(store: SqlMetadataStore) -> None:
    m = manifest("image")
    for tag in TAG_NAMES:
        store.manifests.put(REPO, m, tag)
    store.manifests.put(OTHER, m, "only-in-other")

    def key(tag: str) -> tuple[bytes, bytes]:
        return tag.lower().encode(), tag.encode()

    expected = sorted(TAG_NAMES, key=key)
    assert store.tags.list_names(REPO, None, None) == expected
    assert store.tags.list_names(REPO, 4, None) == expected[:4]
    for size in (1, 2, 4):
        assert page_through(lambda n, last: store.tags.list_names(REPO, n, last), size) == expected
    for i, last in enumerate(expected):
        assert store.tags.list_names(REPO, None, last) == expected[i + 1 :], f"after {last!r}"
    # A ``last`` that is no tag: "LATESt" sorts before "Latest" (uppercase first within a tie).
    assert store.tags.list_names(REPO, None, "LATESt") == [tag for tag in expected if key(tag) > key("LATESt")]
    assert store.tags.list_names(REPO, 2, "LATESt") == ["Latest", "latest"]
    assert store.tags.list_names("nobody/here", None, None) == []


def test_ended_tags_are_not_listed(store: SqlMetadataStore) -> None:
    a, b = manifest("a"), manifest("b")
    store.manifests.put(REPO, a, "moved")
    store.manifests.put(REPO, b, "moved")
    store.manifests.put(REPO, a, "gone")
    store.tags.delete(REPO, "gone")
    assert store.tags.list_names(REPO, None, None) == ["moved"]


def test_delete_tag_ends_its_lifetime_and_keeps_the_manifest(store: SqlMetadataStore) -> None:
    m = manifest("image")
    store.manifests.put(REPO, m, "v1")
    store.manifests.put(REPO, m, "v1-alias")
    assert store.tags.delete(REPO, "v1") is True
    assert store.manifests.resolve_tag(REPO, "v1") is None
    assert store.manifests.get(REPO, m.digest) is not None
    assert store.tags.list_names(REPO, None, None) == ["v1-alias"]
    (lifetime,) = store.tags.history(REPO, "v1")
    assert lifetime.end is not None
    assert store.tags.delete(REPO, "v1") is False
    assert store.tags.delete(REPO, "never") is False
    assert store.tags.delete("nobody/here", "v1") is False
    # Tagging again starts a new lifetime after the ended one.
    store.manifests.put(REPO, m, "v1")
    history = store.tags.history(REPO, "v1")
    assert [h.end is None for h in history] == [True, False]
    assert history[1].end is not None and history[0].start >= history[1].end


def test_history_of_an_unknown_tag_is_empty(store: SqlMetadataStore) -> None:
    assert store.tags.history(REPO, "nope") == []
    store.manifests.put(REPO, manifest("x"), "v1")
    assert store.tags.history(REPO, "nope") == []
    assert store.tags.history(OTHER, "v1") == []


# --- concurrency --------------------------------------------------------------------------------

WORKERS = 8


def test_racing_tag_moves_leave_exactly_one_current_tag(store: SqlMetadataStore) -> None:
    candidates = [manifest(f"candidate-{i}") for i in range(WORKERS)]
    for m in candidates:
        store.manifests.put(REPO, m, None)
    store.manifests.put(REPO, candidates[0], "prod")
    for _round in range(3):
        race(WORKERS, lambda i: store.manifests.put(REPO, candidates[i], "prod"))
        assert current_tag_rows(store, REPO, "prod") == 1
    history = store.tags.history(REPO, "prod")
    resolved = store.manifests.resolve_tag(REPO, "prod")
    assert resolved is not None and history[0].digest == resolved.digest and history[0].end is None
    assert all(h.end is not None for h in history[1:])
    assert store.tags.list_names(REPO, None, None) == ["prod"]


def test_racing_first_tags_on_a_new_repository(store: SqlMetadataStore) -> None:
    candidates = [manifest(f"candidate-{i}") for i in range(WORKERS)]
    race(WORKERS, lambda i: store.manifests.put("fresh/repo", candidates[i], "latest"))
    assert current_tag_rows(store, "fresh/repo", "latest") == 1
    assert store.repositories.list_names(None, None) == ["fresh/repo"]
    assert store.manifests.missing("fresh/repo", [m.digest for m in candidates]) == []
    history = store.tags.history("fresh/repo", "latest")
    assert [h.end is None for h in history] == [True] + [False] * (len(history) - 1)


def test_racing_puts_of_the_same_manifest_store_it_once(store: SqlMetadataStore) -> None:
    m = manifest("popular", blob_refs=[blob_digest("layer")])
    store.blobs.link("fresh/repo", blob_digest("layer"), 5)
    race(WORKERS, lambda _i: store.manifests.put("fresh/repo", m, "latest"))
    assert current_tag_rows(store, "fresh/repo", "latest") == 1
    assert len(store.tags.history("fresh/repo", "latest")) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.manifests)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(t.repositories)).scalar_one() == 1


def test_racing_index_put_and_child_delete_never_leave_the_index_dangling(store: SqlMetadataStore) -> None:
    """Either the delete goes first (the index is refused) or the index does (the delete is)."""
    outcomes: set[tuple[bool, bool]] = set()
    for round_ in range(12):
        child = manifest(f"child-{round_}")
        store.manifests.put(REPO, child, None)
        index = index_of(f"index-{round_}", [child])

        def work(i: int, child: NewManifest = child, index: NewManifest = index) -> None:
            if i == 0:
                with contextlib.suppress(MissingManifestsError):
                    store.manifests.put(REPO, index, None)
            else:
                with contextlib.suppress(ReferencedManifestError):
                    store.manifests.delete(REPO, child.digest)

        race(2, work)
        index_kept = store.manifests.get(REPO, index.digest) is not None
        child_kept = store.manifests.get(REPO, child.digest) is not None
        assert index_kept == child_kept, f"round {round_}: index kept {index_kept}, child kept {child_kept}"
        outcomes.add((index_kept, child_kept))
    assert outcomes <= {(True, True), (False, False)}


def test_racing_links_and_uploads_into_a_new_repository(store: SqlMetadataStore) -> None:
    digest = blob_digest("shared-layer")

    def work(i: int) -> None:
        store.uploads.create(f"u{i}", "fresh/repo")
        store.uploads.complete(f"u{i}", digest, 99)

    race(WORKERS, work)
    assert store.blobs.linked_size("fresh/repo", digest) == 99
    assert store.repositories.list_names(None, None) == ["fresh/repo"]
    assert all(store.uploads.get(f"u{i}") is None for i in range(WORKERS))


# --- migrations ---------------------------------------------------------------------------------


def test_migrations_are_idempotent_and_reach_head(store: SqlMetadataStore) -> None:
    store.manifests.put(REPO, manifest("before"), "v1")
    upgrade(store.engine)
    upgrade(store.engine)
    head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head
    resolved = store.manifests.resolve_tag(REPO, "v1")
    assert resolved is not None, "upgrading again keeps the data"


@pytest.mark.postgres
def test_postgresql_columns_that_promise_bytewise_order_use_the_c_collation(postgres_url: str) -> None:
    engine = create_metadata_engine(postgres_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            # The test server's default collation must be linguistic, or the ordering tests
            # above could not tell a missing COLLATE "C" from a present one.
            default_order = conn.execute(
                text("SELECT array_agg(x ORDER BY x) FROM unnest(ARRAY['a_b', 'a-b', 'a.b', 'a0']) AS x")
            ).scalar_one()
            assert default_order != sorted(default_order), default_order
            collations = {
                row[0]: row[1]
                for row in conn.execute(
                    text(
                        "SELECT table_name || '.' || column_name, collation_name FROM information_schema.columns "
                        "WHERE (table_name, column_name) IN (('repositories', 'name'), ('tags', 'name'))"
                    )
                )
            }
    finally:
        engine.dispose()
    assert collations == {"repositories.name": "C", "tags.name": "C"}
