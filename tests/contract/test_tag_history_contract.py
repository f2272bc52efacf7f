"""The tag history in the metadata store, on SQLite and PostgreSQL (``metadata/sql_aliases.py``):
every move, by any path, is one row written in the move's transaction; rows outlive the tag and
the manifest; a conditional move (expected digest) is exactly-once under a race; the migration
backfills history from the tag lifetimes recorded before it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import insert, select

from modelyard.domain.aliases import TagChange, TagMoveConflict, TargetMissing
from modelyard.metadata import tables as t
from modelyard.metadata.migrations import alembic_config
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from modelyard.metadata.sql_aliases import SqlAliases
from tests.contract.test_metadata_contract import manifest

REPO = "acme/llm"


def moves(aliases: SqlAliases, tag: str) -> list[tuple[str, str | None, str | None, str | None, str | None]]:
    return [
        (e.how, e.from_digest, e.to_digest, e.actor, e.reason)
        for e in aliases.history(REPO, tag, at=None, limit=100, before_id=None)
    ]


def test_every_path_that_changes_a_tag_appends_history(store: SqlMetadataStore) -> None:
    aliases = SqlAliases(store)
    one, two = manifest("one"), manifest("two")
    store.manifests.put(REPO, one, "prod", change=TagChange("push", "user:alice"))
    store.manifests.put(REPO, two, "prod", change=TagChange("push", "user:bob"))
    store.manifests.put(REPO, two, "prod", change=TagChange("push", "user:bob"))  # no move: no row
    previous = aliases.move(
        REPO, "prod", one.digest, expected=two.digest, change=TagChange("rollback", "user:carol", "bad"),
        events=lambda _previous: [],
    )  # fmt: skip
    assert previous == two.digest
    assert store.tags.delete(REPO, "prod", change=TagChange("delete", "user:dave"))
    assert moves(aliases, "prod") == [
        ("delete", one.digest, None, "user:dave", None),
        ("rollback", two.digest, one.digest, "user:carol", "bad"),
        ("push", one.digest, two.digest, "user:bob", None),
        ("push", None, one.digest, "user:alice", None),
    ]


def test_history_outlives_the_tag_and_the_manifest_but_not_the_repository(store: SqlMetadataStore) -> None:
    aliases = SqlAliases(store)
    one = manifest("one")
    store.manifests.put(REPO, one, "staging")
    store.manifests.put(REPO, one, "prod")
    assert store.manifests.delete(REPO, one.digest, change=TagChange("delete", "user:erin"))
    for tag in ("prod", "staging"):
        [gone, pushed] = aliases.history(REPO, tag, at=None, limit=10, before_id=None)
        assert (gone.how, gone.from_digest, gone.to_digest, gone.actor) == ("delete", one.digest, None, "user:erin")
        assert (pushed.to_digest, pushed.manifest_present) == (one.digest, False)
    assert aliases.current(REPO) == []
    # Deleting the repository takes its history with it: a repository made again under the
    # name starts with none.
    assert store.repo_admin.delete(REPO)
    store.manifests.put(REPO, manifest("again"), "prod")
    assert [e.how for e in aliases.history(REPO, "prod", at=None, limit=10, before_id=None)] == ["push"]


def test_a_conditional_move_checks_inside_its_transaction(store: SqlMetadataStore) -> None:
    aliases = SqlAliases(store)
    one, two, three = manifest("one"), manifest("two"), manifest("three")
    for m, tag in ((one, "v1"), (two, "v2"), (three, "v3")):
        store.manifests.put(REPO, m, tag)
    aliases.move(REPO, "prod", one.digest, expected=None, change=TagChange("api"), events=lambda _p: [])
    with pytest.raises(TagMoveConflict) as refused:
        aliases.move(REPO, "prod", two.digest, expected=three.digest, change=TagChange("api"), events=lambda _p: [])
    assert refused.value.current == one.digest
    with pytest.raises(TargetMissing):
        aliases.move(REPO, "prod", "sha256:" + "0" * 64, expected=None, change=TagChange("api"), events=lambda _p: [])

    # Eight movers expecting the same digest: exactly one moves it.
    won: list[str] = []
    lost: list[str | None] = []
    barrier = threading.Barrier(8)

    def attempt(target: str) -> None:
        barrier.wait()
        try:
            aliases.move(REPO, "prod", target, expected=one.digest, change=TagChange("rollback"), events=lambda _p: [])
            won.append(target)
        except TagMoveConflict as exc:
            lost.append(exc.current)

    threads = [threading.Thread(target=attempt, args=([two, three][n % 2].digest,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 7 and set(lost) == set(won)
    assert [e.how for e in aliases.history(REPO, "prod", at=None, limit=10, before_id=None)] == ["rollback", "api"]


def test_migration_0010_backfills_history_from_tag_lifetimes(database_url: str) -> None:
    engine = create_metadata_engine(database_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0009")
        start = datetime(2026, 1, 1, tzinfo=UTC)
        hour = timedelta(hours=1)
        rows = [
            ("prod", "sha256:a", start, start + hour),  # moved to b
            ("prod", "sha256:b", start + hour, start + 2 * hour),  # then deleted
            ("prod", "sha256:c", start + 3 * hour, None),  # pushed again later
            ("v1", "sha256:a", start, None),
        ]
        with engine.begin() as conn:
            conn.execute(
                insert(t.repositories).values(
                    id=1, name=REPO, created_at=start, display_name="llm", description="", is_public=False,
                    is_immutable=False, immutable_tag_patterns=[], mutable_tag_exclusions=[], readme_content="",
                    readme_format="TEXT_MARKDOWN", labels={}, lifecycle_state="AVAILABLE",
                )
            )  # fmt: skip
            conn.execute(
                insert(t.tags),
                [{"repository_id": 1, "name": n, "manifest_digest": d, "lifetime_start": b, "lifetime_end": e}
                 for n, d, b, e in rows],
            )  # fmt: skip
        command.upgrade(config, "head")
        h = t.tag_history.c
        with engine.connect() as conn:
            found = conn.execute(
                select(h.tag, h.how, h.from_digest, h.to_digest, h.actor).order_by(h.tag, h.at, h.id)
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in found] == [
        ("prod", "push", None, "sha256:a", None),
        ("prod", "push", "sha256:a", "sha256:b", None),
        ("prod", "delete", "sha256:b", None, None),
        ("prod", "push", None, "sha256:c", None),
        ("v1", "push", None, "sha256:a", None),
    ]
