"""A push that tags a manifest while a retention run deletes it: the tag never names a missing
manifest. The run's transaction holds the repository row; the push waits for it, then finds the
manifest gone and stores it again (it has the bytes). On PostgreSQL this is row locking; on
SQLite writers are serialized anyway."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelyard.domain.digest import Digest
from modelyard.domain.records import NewManifest
from modelyard.metadata.migrations import upgrade
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from modelyard.metadata.sql_lifecycle import SqlLifecycle
from tests.helpers import OCI_MANIFEST, image_manifest, sha256


@pytest.fixture
def stores(db: dict[str, Any], tmp_path: Any) -> Iterator[tuple[SqlMetadataStore, SqlLifecycle]]:
    engine = create_metadata_engine(db.get("database_url") or f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    metadata = SqlMetadataStore(engine)
    yield metadata, SqlLifecycle(metadata)
    metadata.close()


def test_a_tag_push_racing_a_retention_delete_never_names_a_missing_manifest(
    stores: tuple[SqlMetadataStore, SqlLifecycle],
) -> None:
    metadata, lifecycle = stores
    config, layer = b"{}", b"weights"
    for blob in (config, layer):
        metadata.blobs.link("acme/llm", sha256(blob), len(blob))
    body = image_manifest(config, [layer])
    manifest = NewManifest(
        digest=str(Digest.of(body)), media_type=OCI_MANIFEST, content=body, blob_refs=(sha256(config), sha256(layer))
    )
    metadata.manifests.put("acme/llm", manifest, None)

    deleted = threading.Event()
    failures: list[BaseException] = []

    def hold(digest: str, tags: tuple[str, ...]) -> list[Any]:
        """Called inside the run's transaction, the manifest deleted but not committed: give the
        push time to start and reach whatever it waits on."""
        deleted.set()
        time.sleep(0.5)
        return []

    def push() -> None:
        deleted.wait(timeout=10)
        try:
            metadata.manifests.put("acme/llm", manifest, "prod")
        except BaseException as exc:  # reported below
            failures.append(exc)

    pusher = threading.Thread(target=push)
    pusher.start()
    deleted_digests = lifecycle.delete_versions("acme/llm", [(manifest.digest, ())], hold)
    pusher.join(timeout=30)
    assert not failures, failures
    assert deleted_digests == [manifest.digest]
    current = metadata.manifests.resolve_tag("acme/llm", "prod")
    assert current is not None and current.digest == manifest.digest  # stored again with its tag
