"""The garbage-collection protocol of the metadata store, on SQLite and PostgreSQL.

A blob dies in two locked steps (``condemn``, then ``purge`` deleting the bytes under the row
lock); anyone bringing the same digest back (``link``, an upload's ``complete``) revives it
under that lock. These tests hold the store to it, including the interleaving that lost data
before: a revival that runs while a purge is deleting the bytes.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from modelyard.metadata.sql import SqlMetadataStore
from tests.contract.test_metadata_contract import REPO, blob_digest, manifest

OTHER = "acme/other"


def later() -> datetime:
    """A cutoff after everything the test linked: every unreferenced blob is old enough."""
    return datetime.now(UTC) + timedelta(seconds=1)


def test_condemned_blob_is_unlinked_everywhere_and_waits_for_purge(store: SqlMetadataStore) -> None:
    digest = blob_digest("stray")
    store.blobs.link(REPO, digest, 5)
    store.blobs.link(OTHER, digest, 5)

    assert store.garbage.unreferenced_blobs(later(), 10) == [(digest, 5)]
    assert store.garbage.condemn([digest], later()) == [digest]

    assert store.blobs.linked_size(REPO, digest) is None
    assert store.blobs.linked_size(OTHER, digest) is None
    assert store.blobs.stored_size(digest) is None  # a mount without `from` finds nothing
    assert store.blobs.missing(REPO, [digest]) == [digest]
    assert store.garbage.unreferenced_blobs(later(), 10) == []  # not condemned twice
    assert store.garbage.condemned_blobs(10) == [(digest, 5)]

    removed: list[str] = []
    assert store.garbage.purge([digest], removed.append) == [digest]
    assert removed == [digest]
    assert store.garbage.condemned_blobs(10) == []
    assert store.garbage.known_blobs([digest]) == set()


def test_condemn_spares_referenced_and_recently_linked_blobs(store: SqlMetadataStore) -> None:
    layer, stray = blob_digest("layer"), blob_digest("stray")
    store.blobs.link(REPO, layer, 5)
    store.blobs.link(REPO, stray, 5)
    cutoff = later()
    store.manifests.put(REPO, manifest("v1", blob_refs=[layer]), "v1")  # referenced after listing

    assert store.garbage.condemn([layer, stray], cutoff) == [stray]
    store.blobs.link(OTHER, blob_digest("fresh"), 1)
    assert store.garbage.condemn([blob_digest("fresh")], datetime.now(UTC) - timedelta(hours=1)) == []
    assert store.blobs.linked_size(REPO, layer) == 5


def test_linking_revives_a_condemned_blob_and_purge_leaves_it(store: SqlMetadataStore) -> None:
    digest = blob_digest("pushed again")
    store.blobs.link(REPO, digest, 7)
    store.garbage.condemn([digest], later())
    settled: list[bool] = []

    store.blobs.link(OTHER, digest, 7, settle=lambda: settled.append(True))

    assert settled == [True]
    assert store.blobs.linked_size(OTHER, digest) == 7
    assert store.blobs.stored_size(digest) == 7
    removed: list[str] = []
    assert store.garbage.purge([digest], removed.append) == []
    assert removed == []


def test_completing_an_upload_revives_a_condemned_blob(store: SqlMetadataStore) -> None:
    digest = blob_digest("uploaded again")
    store.blobs.link(REPO, digest, 9)
    store.garbage.condemn([digest], later())
    store.uploads.create("u1", REPO)
    assert store.uploads.mark_committing("u1", digest)
    assert store.uploads.get("u1").committing_digest == digest  # type: ignore[union-attr]

    assert store.uploads.complete("u1", digest, 9, settle=lambda: None)

    assert store.uploads.get("u1") is None
    assert store.blobs.linked_size(REPO, digest) == 9
    assert store.garbage.purge([digest], lambda _: None) == []


def test_a_failing_settle_links_nothing(store: SqlMetadataStore) -> None:
    digest = blob_digest("bytes gone")

    def settle() -> None:
        raise FileNotFoundError(digest)

    try:
        store.blobs.link(REPO, digest, 3, settle=settle)
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("settle's error must reach the caller")
    assert store.blobs.linked_size(REPO, digest) is None
    assert store.garbage.known_blobs([digest]) == set()


def test_a_revival_waits_for_a_purge_that_is_deleting_the_bytes(store: SqlMetadataStore) -> None:
    """The interleaving that lost data: a push of the digest while its bytes are being deleted."""
    digest = blob_digest("contended")
    store.blobs.link(REPO, digest, 4)
    store.garbage.condemn([digest], later())
    events: list[str] = []
    deleting = threading.Event()

    def remove_bytes(_: str) -> None:
        deleting.set()
        time.sleep(0.3)  # the reviver is released meanwhile and must wait for this transaction
        events.append("bytes deleted")

    def revive() -> None:
        assert deleting.wait(10)
        store.blobs.link(OTHER, digest, 4, settle=lambda: events.append("bytes put back"))

    reviver = threading.Thread(target=revive)
    reviver.start()
    assert store.garbage.purge([digest], remove_bytes) == [digest]
    reviver.join(30)

    assert events == ["bytes deleted", "bytes put back"]
    assert store.blobs.linked_size(OTHER, digest) == 4
    assert store.garbage.condemned_blobs(10) == []


def test_orphaned_bytes_get_a_condemned_row_unless_known(store: SqlMetadataStore) -> None:
    known, orphan, committing = blob_digest("known"), blob_digest("orphan"), blob_digest("committing")
    store.blobs.link(REPO, known, 1)
    store.uploads.create("u1", REPO)
    store.uploads.mark_committing("u1", committing)

    assert store.garbage.known_blobs([known, orphan, committing]) == {known, committing}
    assert store.garbage.condemn_orphans({orphan: 2}) == [orphan]
    assert store.garbage.condemn_orphans({orphan: 2, known: 1}) == []  # rows exist now: nothing new
    assert store.garbage.condemned_blobs(10) == [(orphan, 2)]
    assert store.blobs.linked_size(REPO, known) == 1
