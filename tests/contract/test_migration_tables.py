"""Migrations that add tables, on SQLite and PostgreSQL: the migrated tables are the ones
``tables.py`` declares (so the stores' queries and the schema agree), and each downgrades to the
revision before it, taking exactly its tables."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelyard.metadata import tables as t
from modelyard.metadata.migrations import alembic_config, upgrade
from modelyard.metadata.sql import create_metadata_engine

ADDED = {
    "0015": ("0014", {"replication_targets", "replication_rules", "replication_executions", "replication_tasks"}),
    "0016": ("0015", {"proxy_rules", "proxy_tags"}),
}


@pytest.mark.parametrize("revision", sorted(ADDED))
def test_the_migration_matches_the_declared_tables_and_downgrades(database_url: str, revision: str) -> None:
    before, added = ADDED[revision]
    engine = create_metadata_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
        ours = [d for d in diff if added & set(str(d).replace("'", " ").replace(",", " ").split())]
        assert ours == []
        command.downgrade(alembic_config(engine), before)
        with engine.connect() as conn:
            names = set(engine.dialect.get_table_names(conn))
        assert not added & names
    finally:
        engine.dispose()
