"""The SQL metadata store (SQLAlchemy 2.0 Core) for SQLite and PostgreSQL.

Core rather than the ORM: every call is one or two small statements on indexed columns, and
the hot reads (resolve a tag, check a blob link) must cost tens of microseconds.

Transactions: reads run in autocommit (no BEGIN/COMMIT round trips); writes run in
:meth:`SqlMetadataStore.write`, which on SQLite takes the write lock up front
(``BEGIN IMMEDIATE``, so concurrent writers queue on ``busy_timeout`` instead of failing on a
lock upgrade) and on every backend retries a transaction that lost a uniqueness race.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from modelyard.domain.events import Event
from modelyard.domain.records import RepositoryRecord, UploadRecord
from modelyard.metadata import sql_identity as ident
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.fastread import FastReads, as_json, as_time
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_base import SqlPart
from modelyard.metadata.sql_control import SqlCompartments, SqlRegistryConfig, SqlRepositoryAdmin
from modelyard.metadata.sql_gc import SqlGarbage
from modelyard.metadata.sql_manifests import SqlManifests, SqlTags

T = TypeVar("T")
_WRITE_ATTEMPTS = 5


def _configure_sqlite(dbapi_conn: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_metadata_engine(url: str) -> Engine:
    """An engine for ``url`` with the connection settings each backend needs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            _configure_sqlite(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            if not conn.get_execution_options().get("modelyard_read"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql"):
        if url.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; a bare URL would pick psycopg2 on SQLAlchemy 2.0.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}: use sqlite or postgresql")


def raw_connector(engine: Engine) -> Callable[[], Any]:
    """Open a DB-API connection outside the pool, set up as the pool's are, in autocommit."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)

    def connect() -> Any:
        if engine.dialect.name == "sqlite":
            conn = engine.dialect.loaded_dbapi.connect(*cargs, **{**cparams, "check_same_thread": False, "timeout": 30})
            _configure_sqlite(conn)
        else:
            conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
            conn.autocommit = True
        return conn

    return connect


# The hot reads (every manifest GET, tag list, blob GET/HEAD and upload chunk runs one) are built
# once, with bind parameters: building a ``select()`` and generating its cache key on every call
# cost ~3x the execution itself (profiled in bench/README.md, "Results log"). Same SQL, same rows.
_r = t.repositories.c
_GET_REPOSITORY = select(
    _r.id, _r.name, _r.created_at, _r.is_public, _r.is_immutable, _r.immutable_tag_patterns, _r.mutable_tag_exclusions
).where(_r.name == bindparam("name"))


_INTEGER = Integer()


def _list_repositories_query(after: bool, limited: bool) -> Any:
    query = select(_r.name).order_by(_r.name)
    if after:
        query = query.where(_r.name > bindparam("last"))
    if limited:
        query = query.limit(bindparam("limit", type_=_INTEGER))
    return query


# (after ``last``?, limited?) -> the statement
_LIST_REPOSITORIES = {(a, n): _list_repositories_query(a, n) for a in (False, True) for n in (False, True)}


class SqlRepositories(SqlPart):
    def get(self, name: str) -> RepositoryRecord | None:
        row = self._store.fast.first(_GET_REPOSITORY, {"name": name})
        if row is None:
            return None
        repo_id, repo_name, created_at, is_public, is_immutable, immutable, exclusions = row
        return RepositoryRecord(
            repo_id,
            repo_name,
            as_time(created_at),
            is_public=bool(is_public),
            is_immutable=bool(is_immutable),
            immutable_tag_patterns=tuple(as_json(immutable) or ()),
            mutable_tag_exclusions=tuple(as_json(exclusions) or ()),
        )

    def ensure(self, name: str) -> RepositoryRecord:
        def work(conn: Connection) -> None:
            self._ensure_repo(conn, name)

        self._store.write(work)
        record = self.get(name)
        assert record is not None
        return record

    def list_names(self, limit: int | None, last: str | None) -> list[str]:
        """A catalog page: one walk of the unique index on ``name`` (the fast-read path)."""
        params: dict[str, Any] = {}
        if last is not None:
            params["last"] = last
        if limit is not None:
            params["limit"] = limit
        statement = _LIST_REPOSITORIES[last is not None, limit is not None]
        return [row[0] for row in self._store.fast.rows(statement, params)]


_LINKED_SIZE = (
    select(t.blobs.c.size)
    .select_from(
        t.repositories.join(t.repository_blobs, t.repository_blobs.c.repository_id == t.repositories.c.id).join(
            t.blobs, t.blobs.c.digest == t.repository_blobs.c.digest
        )
    )
    .where(t.repositories.c.name == bindparam("repository"), t.repository_blobs.c.digest == bindparam("digest"))
)


class SqlBlobLinks(SqlPart):
    def linked_size(self, repository: str, digest: str) -> int | None:
        row = self._store.fast.first(_LINKED_SIZE, {"repository": repository, "digest": digest})
        return None if row is None else int(row[0])

    def stored_size(self, digest: str) -> int | None:
        with self._read() as conn:
            return conn.execute(
                select(t.blobs.c.size).where(t.blobs.c.digest == digest, t.blobs.c.condemned_at.is_(None))
            ).scalar()

    def link(self, repository: str, digest: str, size: int, settle: Callable[[], None] | None = None) -> None:
        self._store.write(lambda conn: self._link_blob(conn, repository, digest, size, settle))

    def unlink(self, repository: str, digest: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            result = conn.execute(
                delete(t.repository_blobs).where(
                    t.repository_blobs.c.repository_id == repo_id, t.repository_blobs.c.digest == digest
                )
            )
            if result.rowcount == 0:
                return False
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        return self._missing_in(t.repository_blobs, repository, digests)


_GET_UPLOAD = (
    select(t.uploads, t.repositories.c.name)
    .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
    .where(t.uploads.c.id == bindparam("upload_id"))
)


class SqlUploads(SqlPart):
    def create(self, upload_id: str, repository: str, owner: str | None = None) -> UploadRecord:
        now = utcnow()

        def work(conn: Connection) -> None:
            repo_id = self._ensure_repo(conn, repository)
            conn.execute(
                insert(t.uploads).values(
                    id=upload_id, repository_id=repo_id, offset=0, created_at=now, updated_at=now, owner=owner
                )
            )

        self._store.write(work)
        return UploadRecord(upload_id, repository, 0, now, now, owner)

    def get(self, upload_id: str) -> UploadRecord | None:
        with self._read() as conn:
            row = conn.execute(_GET_UPLOAD, {"upload_id": upload_id}).first()
        if row is None:
            return None
        return UploadRecord(
            row.id,
            row.name,
            row.offset,
            as_utc(row.created_at),
            as_utc(row.updated_at),
            row.owner,
            row.committing_digest,
            None if row.hash_state is None else bytes(row.hash_state),
        )

    def set_offset(self, upload_id: str, expected: int, offset: int, hash_state: bytes | None = None) -> bool:
        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(t.uploads)
                .where(t.uploads.c.id == upload_id, t.uploads.c.offset == expected)
                .values(offset=offset, hash_state=hash_state, updated_at=utcnow())
            )
            return result.rowcount == 1

        return self._store.write(work)

    def mark_committing(self, upload_id: str, digest: str) -> bool:
        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(t.uploads)
                .where(t.uploads.c.id == upload_id)
                .values(committing_digest=digest, updated_at=utcnow())
            )
            return result.rowcount == 1

        return self._store.write(work)

    def complete(
        self,
        upload_id: str,
        digest: str,
        size: int,
        settle: Callable[[], None] | None = None,
        *,
        events: Sequence[Event] = (),
    ) -> bool:
        def work(conn: Connection) -> bool:
            row = conn.execute(
                select(t.repositories.c.name)
                .join(t.uploads, t.uploads.c.repository_id == t.repositories.c.id)
                .where(t.uploads.c.id == upload_id)
            ).first()
            if row is None:
                return False
            self._link_blob(conn, row.name, digest, size, settle)
            conn.execute(delete(t.uploads).where(t.uploads.c.id == upload_id))
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def delete(self, upload_id: str) -> bool:
        return self._store.write(
            lambda conn: conn.execute(delete(t.uploads).where(t.uploads.c.id == upload_id)).rowcount > 0
        )


class SqlMetadataStore:
    """:class:`~modelyard.metadata.base.MetadataStore` on one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: SQLite reads are local (microseconds) and may run on the event loop; PostgreSQL's
        #: cross the network and must not (services.runner.Reader).
        self.reads_inline = engine.dialect.name == "sqlite"
        options: dict[str, Any] = {"modelyard_read": True}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        self.reader = engine.execution_options(**options)
        self.fast = FastReads(engine, self.reader, raw_connector(engine))
        self.repositories = SqlRepositories(self)
        self.blobs = SqlBlobLinks(self)
        self.uploads = SqlUploads(self)
        self.manifests = SqlManifests(self)
        self.tags = SqlTags(self)
        self.compartments = SqlCompartments(self)
        self.registry_config = SqlRegistryConfig(self)
        self.repo_admin = SqlRepositoryAdmin(self)
        self.principals = ident.SqlPrincipals(self)
        self.api_keys = ident.SqlApiKeys(self)
        self.policies = ident.SqlPolicies(self)
        self.login_throttle = ident.SqlLoginThrottle(self)
        self.audit = ident.SqlAuditLog(self)
        self.secrets = ident.SqlSecrets(self)
        self.garbage = SqlGarbage(self)

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, retrying when it lost a race with another writer."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except (IntegrityError, OperationalError) as exc:
                retryable = isinstance(exc, IntegrityError) or "locked" in str(exc.orig)
                if not retryable or attempt == _WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.fast.close()
        self.engine.dispose()
