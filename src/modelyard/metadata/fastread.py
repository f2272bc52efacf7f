"""The hot reads (every manifest pull, tag list and blob check runs one) on a raw DB-API
connection, with their SQL compiled once per dialect.

Why: SQLAlchemy's execute path (statement cache lookup, pool checkout, result wrapping) costs
about 90 us for a query SQLite answers in under 10 us (profiled in bench/README.md). These
reads are fixed SELECTs built with bind parameters in SQLAlchemy Core, so the SQL is exactly
what SQLAlchemy sends on either backend; only the execution skips the machinery.

Only the main thread -- where a serving process runs its event loop -- takes this path, on one
connection of its own outside the pool, in autocommit: every read sees what is committed (SQLite
in WAL mode, PostgreSQL at read committed) and no transaction stays open. Other threads get the
same rows through SQLAlchemy, so the number of connections stays bounded. A connection that
fails is replaced and the read retried once. Values come back as the driver gives them;
:func:`as_json` and :func:`as_time` even out what SQLite stores as text.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import Select

from modelyard.metadata.clock import as_utc

Row = tuple[Any, ...]


def as_json(value: Any) -> Any:
    """SQLite hands JSON columns back as text; PostgreSQL (psycopg) already decoded them."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def as_time(value: Any) -> datetime:
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


class FastReads:
    def __init__(self, engine: Engine, reader: Engine, connect: Callable[[], Any]) -> None:
        self._engine = engine
        self._reader = reader
        self._connect = connect
        self._conn: Any = None
        self._compiled: dict[int, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
        self._error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def _sql(self, statement: Select[Any]) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        """The SQL text, the parameter order (positional styles) and the values the statement
        binds itself (literals SQLAlchemy turned into anonymous parameters)."""
        key = id(statement)  # the statements are module-level constants, alive for the process
        cached = self._compiled.get(key)
        if cached is None:
            compiled = statement.compile(dialect=self._engine.dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
            cached = (str(compiled), order, fixed)
            self._compiled[key] = cached
        return cached

    def rows(self, statement: Select[Any], params: dict[str, Any]) -> list[Row]:
        if threading.current_thread() is not threading.main_thread():
            with self._reader.connect() as conn:
                return [tuple(row) for row in conn.execute(statement, params)]
        sql, order, fixed = self._sql(statement)
        values = {**fixed, **params}
        args: Any = [values[name] for name in order] if order is not None else values
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                cursor = self._conn.cursor()
                try:
                    cursor.execute(sql, args)
                    return list(cursor.fetchall())
                finally:
                    cursor.close()
            except self._error:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def first(self, statement: Select[Any], params: dict[str, Any]) -> Row | None:
        found = self.rows(statement, params)
        return found[0] if found else None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(self._error):
                conn.close()
