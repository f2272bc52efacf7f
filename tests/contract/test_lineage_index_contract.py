"""The lineage index on SQLite and PostgreSQL: a manifest's declared base is stored idempotently
and dies with the manifest, descendants are found by base and by subject across repositories in
one query per walk step, migration 0014 indexes bases of manifests stored before it, and on
PostgreSQL the descendant lookups use indexes, not scans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from modelyard.domain.lineage import BASE_DIGEST, BASE_NAME, BaseRef
from modelyard.metadata.migrations import alembic_config, upgrade
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from modelyard.metadata.sql_lineage import SqlLineageIndex
from modelyard.metadata.sql_models import SqlModelIndex
from modelyard.services.models import ModelService
from modelyard.services.models.lineage import LineageService
from modelyard.services.runner import BlockingRunner
from modelyard.storage.filesystem import FilesystemBlobStore
from tests.contract.test_metadata_contract import manifest


async def everyone(repository: str) -> bool:
    return True


def all_but(hidden: str) -> Callable[[str], Awaitable[bool]]:
    async def visible(repository: str) -> bool:
        return repository != hidden

    return visible


def test_bases_and_subjects_link_versions_across_repositories(store: SqlMetadataStore) -> None:
    index = SqlLineageIndex(store)
    base = manifest("base")
    store.manifests.put("team/base", base, "v1")
    child = manifest("child", annotations={BASE_NAME: "team/base:v1", BASE_DIGEST: base.digest})
    store.manifests.put("team/ft", child, "v2")
    report = manifest("report", subject=base.digest, artifact_type="application/vnd.example.eval")
    store.manifests.put("team/base", report, None)
    for _ in range(2):  # idempotent
        assert index.put_base("team/ft", child.digest, BaseRef("team/base", base.digest, "team/base:v1"))
    assert not index.put_base("team/ft", "sha256:" + "0" * 64, BaseRef("team/base", base.digest, None))

    nodes = index.nodes([("team/ft", child.digest), ("team/base", report.digest), ("team/none", base.digest)])
    assert set(nodes) == {("team/ft", child.digest), ("team/base", report.digest)}
    assert nodes[("team/ft", child.digest)].parents == ((("team/base", base.digest), "base"),)
    assert nodes[("team/ft", child.digest)].node.tags == ("v2",)
    assert nodes[("team/base", report.digest)].parents == ((("team/base", base.digest), "subject"),)
    assert nodes[("team/base", report.digest)].node.artifact_type == "application/vnd.example.eval"

    children = index.children([("team/base", base.digest)], 10)
    assert sorted(children) == [
        (("team/base", base.digest), "base", ("team/ft", child.digest)),
        (("team/base", base.digest), "subject", ("team/base", report.digest)),
    ]
    # The same digest in another repository is another version: nothing derives from it.
    assert index.children([("team/other", base.digest)], 10) == []

    store.manifests.delete("team/ft", child.digest)
    assert index.children([("team/base", base.digest)], 10) == [
        (("team/base", base.digest), "subject", ("team/base", report.digest))
    ]


def test_migration_0014_indexes_the_bases_of_stored_manifests(database_url: str) -> None:
    engine = create_metadata_engine(database_url)
    upgrade(engine)
    store = SqlMetadataStore(engine)
    try:
        base = manifest("base")
        store.manifests.put("team/base", base, "v1")
        for label, notes in (
            ("named", {BASE_NAME: "localhost:5000/team/base:v1", BASE_DIGEST: base.digest}),
            ("nameless", {BASE_DIGEST: base.digest}),
            ("garbage", {BASE_NAME: "Not A Name", BASE_DIGEST: base.digest}),
        ):
            store.manifests.put(
                "team/base" if label == "nameless" else f"team/{label}", manifest(label, annotations=notes), None
            )
        config = alembic_config(engine)
        command.downgrade(config, "0013")
        command.upgrade(config, "head")
        found = SqlLineageIndex(store).children([("team/base", base.digest)], 10)
        assert sorted(child[0] for _, _, child in found) == ["team/base", "team/named"]
    finally:
        store.close()


@pytest.mark.postgres
def test_descendant_lookups_use_indexes_on_postgresql(postgres_url: str) -> None:
    engine = create_metadata_engine(postgres_url)
    upgrade(engine)
    store = SqlMetadataStore(engine)
    try:
        index = SqlLineageIndex(store)
        base = manifest("base")
        store.manifests.put("team/base", base, "v1")
        for number in range(200):
            child = manifest(f"c{number}", annotations={BASE_NAME: f"team/b{number % 20}", BASE_DIGEST: base.digest})
            store.manifests.put(f"team/c{number % 10}", child, None)
            index.put_base(f"team/c{number % 10}", child.digest, BaseRef(f"team/b{number % 20}", base.digest, None))
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("SET enable_seqscan = off"))
            for table, where in (
                ("manifest_bases", f"base_digest = '{base.digest}' AND base_repository = 'team/b3'"),
                ("manifests", f"repository_id = 1 AND subject_digest = '{base.digest}'"),
            ):
                plan = "\n".join(conn.execute(text(f"EXPLAIN SELECT * FROM {table} WHERE {where}")).scalars())
                assert f"Seq Scan on {table}" not in plan, plan
    finally:
        store.close()


async def test_the_walk_stops_at_its_bounds_and_says_so(store: SqlMetadataStore, tmp_path: Path) -> None:
    """A chain of 8 bases: from its middle, a depth bound of 3 shows 3 ancestors and 3
    descendants and marks the answer truncated; a walk that reaches both ends is not."""
    runner = BlockingRunner()
    try:
        models = ModelService(store, SqlModelIndex(store), FilesystemBlobStore(tmp_path, fsync=False), runner)
        index = SqlLineageIndex(store)
        chain: list[str] = []
        for number in range(8):
            notes = {BASE_DIGEST: chain[-1]} if chain else None  # a nameless base: the same repository
            item = manifest(f"link{number}", annotations=notes)
            store.manifests.put("team/chain", item, f"v{number}")
            if chain:
                index.put_base("team/chain", item.digest, BaseRef("team/chain", chain[-1], None))
            chain.append(item.digest)

        bounded = LineageService(store, index, models, runner, max_depth=3)
        found = await bounded.lineage("team/chain", "v4", everyone)
        assert [n.digest for n in found.ancestors] == chain[3::-1][:3]
        assert [n.digest for n in found.descendants] == chain[5:8]
        assert found.truncated
        near_end = await bounded.lineage("team/chain", "v3", everyone)
        assert [n.digest for n in near_end.descendants] == chain[4:7] and near_end.truncated  # v7 lies beyond
        # v3 with a bound of 4: the last descendant (v7) is exactly at the bound, nothing beyond.
        at_end = await LineageService(store, index, models, runner, max_depth=4).lineage("team/chain", "v3", everyone)
        assert [n.digest for n in at_end.descendants] == chain[4:8] and not at_end.truncated

        whole = await LineageService(store, index, models, runner).lineage("team/chain", "v4", everyone)
        assert [n.digest for n in whole.ancestors] == chain[3::-1] and not whole.truncated
        hidden = await bounded.lineage("team/chain", "v4", all_but("team/chain"))
        assert hidden.ancestors == hidden.descendants == () and hidden.edges == ()
    finally:
        runner.shutdown()
