"""What every part of the SQL metadata store shares: time, the engine access of a part, and
the repository row every write may need first."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.domain.reference import split_compartment
from modelyard.metadata import tables as t
from modelyard.metadata.clock import utcnow
from modelyard.metadata.fastread import FastReads

T = TypeVar("T")


class SqlStoreAccess(Protocol):
    """What a part needs of the store that owns it (:class:`~modelyard.metadata.sql.SqlMetadataStore`):
    declared here so that the parts do not import the store module that imports them."""

    @property
    def reader(self) -> Engine: ...

    @property
    def fast(self) -> FastReads: ...

    def write(self, work: Callable[[Connection], T]) -> T: ...


def insert_repository(conn: Connection, name: str, *, created_by: str | None, values: dict[str, Any]) -> int:
    """Insert a repository row, creating its compartment row if needed; returns the id.

    Whether creating is *allowed* is the services' decision; this only keeps rows consistent.
    """
    now = utcnow()
    compartment, display_name = split_compartment(name)
    compartment_id = None
    if compartment is not None:
        c = t.compartments.c
        compartment_id = conn.execute(select(c.id).where(c.name == compartment)).scalar()
        if compartment_id is None:
            compartment_id = conn.execute(
                insert(t.compartments)
                .values(name=compartment, description="", created_at=now, updated_at=now)
                .returning(c.id)
            ).scalar_one()
    row = {
        "description": "",
        "is_public": False,
        "is_immutable": False,
        "immutable_tag_patterns": [],
        "mutable_tag_exclusions": [],
        "readme_content": "",
        "readme_format": "TEXT_MARKDOWN",
        "labels": {},
        "lifecycle_state": "AVAILABLE",
        **values,
    }
    return int(
        conn.execute(
            insert(t.repositories)
            .values(
                name=name,
                compartment_id=compartment_id,
                display_name=display_name,
                created_by=created_by,
                created_at=now,
                **row,
            )
            .returning(t.repositories.c.id)
        ).scalar_one()
    )


class SqlPart:
    """Shared access to the engine for the per-concern stores."""

    def __init__(self, store: SqlStoreAccess) -> None:
        self._store = store

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._store.reader.connect() as conn:
            yield conn

    def _repo_id(self, conn: Connection, name: str) -> int | None:
        return conn.execute(select(t.repositories.c.id).where(t.repositories.c.name == name)).scalar()

    def _ensure_repo(self, conn: Connection, name: str) -> int:
        repo_id = self._repo_id(conn, name)
        if repo_id is None:
            repo_id = insert_repository(conn, name, created_by=None, values={})
        return repo_id

    def _claim_blob(self, conn: Connection, digest: str, size: int) -> None:
        """Insert the blob's row, or revive it: bump ``last_linked_at`` and clear ``condemned_at``.

        One upsert, so on PostgreSQL it waits for a garbage collector holding the row's lock
        and, should that collector delete the row, inserts it afresh; the row stays locked
        until the caller's transaction ends, so no collection can delete the bytes the caller
        puts or checks meanwhile (``sql_gc.py`` tells the whole protocol).
        """
        now = utcnow()
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(t.blobs).values(digest=digest, size=size, created_at=now, last_linked_at=now)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[t.blobs.c.digest], set_={"last_linked_at": now, "condemned_at": None}
            )
        )

    def _link_blob(
        self, conn: Connection, repository: str, digest: str, size: int, settle: Callable[[], None] | None = None
    ) -> None:
        """Claim the blob, run ``settle`` (which puts or checks its bytes, raising to give up),
        then link it into ``repository``."""
        repo_id = self._ensure_repo(conn, repository)
        self._claim_blob(conn, digest, size)
        if settle is not None:
            settle()
        self._insert_ignore(
            conn, t.repository_blobs, {"repository_id": repo_id, "digest": digest, "created_at": utcnow()}
        )

    def _missing_in(self, table: Any, repository: str, digests: Sequence[str]) -> list[str]:
        """Those of ``digests`` with no row in ``table`` (by ``repository_id``, ``digest``) for the
        repository, in the given order."""
        if not digests:
            return []
        query = (
            select(table.c.digest)
            .join(t.repositories, t.repositories.c.id == table.c.repository_id)
            .where(t.repositories.c.name == repository, table.c.digest.in_(list(digests)))
        )
        with self._read() as conn:
            present = set(conn.execute(query).scalars())
        return [d for d in digests if d not in present]

    def _insert_ignore(self, conn: Connection, table: Any, values: dict[str, Any]) -> bool:
        """Insert unless the key exists; whether a row was inserted."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
        # RETURNING rather than rowcount: psycopg reports -1 for a statement like this one.
        key = next(iter(table.primary_key.columns))
        return conn.execute(statement.returning(key)).first() is not None
