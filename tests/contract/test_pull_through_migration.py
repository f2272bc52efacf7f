"""Migration 0016 (pull-through cache) on SQLite and PostgreSQL: the migrated tables are the ones
``tables.py`` declares (so the store's queries and the schema agree), and it downgrades."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelyard.metadata import tables as t
from modelyard.metadata.migrations import alembic_config, upgrade
from modelyard.metadata.sql import create_metadata_engine

PROXY = {"proxy_rules", "proxy_tags"}


def test_migration_0016_matches_the_declared_tables_and_downgrades(database_url: str) -> None:
    engine = create_metadata_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
        ours = [d for d in diff if PROXY & set(str(d).replace("'", " ").replace(",", " ").split())]
        assert ours == []
        command.downgrade(alembic_config(engine), "0015")
        with engine.connect() as conn:
            names = set(engine.dialect.get_table_names(conn))
        assert not PROXY & names
    finally:
        engine.dispose()
