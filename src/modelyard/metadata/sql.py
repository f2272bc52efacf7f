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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Integer,
    String,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from modelyard.metadata import tables as t
from modelyard.metadata.base import (
    ImmutableTagError,
    ManifestRecord,
    MissingBlobsError,
    NewManifest,
    RepositoryRecord,
    TagRecord,
    UploadRecord,
)

T = TypeVar("T")
_WRITE_ATTEMPTS = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


def split_name(name: str) -> tuple[str | None, str]:
    """``acme/team/llm`` -> (``acme``, ``team/llm``); a single component is in the root compartment."""
    if "/" not in name:
        return None, name
    compartment, rest = name.split("/", 1)
    return compartment, rest


def insert_repository(conn: Connection, name: str, *, created_by: str | None, values: dict[str, Any]) -> int:
    """Insert a repository row, creating its compartment row if needed; returns the id.

    Whether creating is *allowed* is the services' decision; this only keeps rows consistent.
    """
    now = utcnow()
    compartment, display_name = split_name(name)
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


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def create_metadata_engine(url: str) -> Engine:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.split("://", 1)[1]
    """An engine for ``url`` with the connection settings each backend needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            if not conn.get_execution_options().get("modelyard_read"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql"):
        if url.startswith(("postgresql://", "postgres://")):
            # psycopg 3 is the driver we ship; a bare URL would pick psycopg2 on SQLAlchemy 2.0.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}: use sqlite or postgresql")


class _Base:
    """Shared access to the engine for the per-concern stores."""

    def __init__(self, store: SqlMetadataStore) -> None:
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

    def _link_blob(self, conn: Connection, repository: str, digest: str, size: int) -> None:
        now = utcnow()
        repo_id = self._ensure_repo(conn, repository)
        self._insert_ignore(conn, t.blobs, {"digest": digest, "size": size, "created_at": now, "last_linked_at": now})
        conn.execute(update(t.blobs).where(t.blobs.c.digest == digest).values(last_linked_at=now))
        self._insert_ignore(conn, t.repository_blobs, {"repository_id": repo_id, "digest": digest, "created_at": now})

    def _insert_ignore(self, conn: Connection, table: Any, values: dict[str, Any]) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
        else:
            conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())


# The hot reads (every manifest GET, tag list, blob GET/HEAD and upload chunk runs one) are built
# once, with bind parameters: building a ``select()`` and generating its cache key on every call
# cost ~3x the execution itself (profiled in bench/README.md, "Results log"). Same SQL, same rows.
_r = t.repositories.c
_GET_REPOSITORY = select(
    _r.id, _r.name, _r.created_at, _r.is_public, _r.is_immutable, _r.immutable_tag_patterns, _r.mutable_tag_exclusions
).where(_r.name == bindparam("name"))


class SqlRepositories(_Base):
    def get(self, name: str) -> RepositoryRecord | None:
        with self._read() as conn:
            row = conn.execute(_GET_REPOSITORY, {"name": name}).first()
        if row is None:
            return None
        return RepositoryRecord(
            row.id,
            row.name,
            _aware(row.created_at),
            is_public=bool(row.is_public),
            is_immutable=bool(row.is_immutable),
            immutable_tag_patterns=tuple(row.immutable_tag_patterns or ()),
            mutable_tag_exclusions=tuple(row.mutable_tag_exclusions or ()),
        )

    def ensure(self, name: str) -> RepositoryRecord:
        def work(conn: Connection) -> None:
            self._ensure_repo(conn, name)

        self._store.write(work)
        record = self.get(name)
        assert record is not None
        return record

    def list_names(self, limit: int | None, last: str | None) -> list[str]:
        query = select(t.repositories.c.name).order_by(t.repositories.c.name)
        if last is not None:
            query = query.where(t.repositories.c.name > last)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return list(conn.execute(query).scalars())


_LINKED_SIZE = (
    select(t.blobs.c.size)
    .select_from(
        t.repositories.join(t.repository_blobs, t.repository_blobs.c.repository_id == t.repositories.c.id).join(
            t.blobs, t.blobs.c.digest == t.repository_blobs.c.digest
        )
    )
    .where(t.repositories.c.name == bindparam("repository"), t.repository_blobs.c.digest == bindparam("digest"))
)


class SqlBlobLinks(_Base):
    def linked_size(self, repository: str, digest: str) -> int | None:
        with self._read() as conn:
            return conn.execute(_LINKED_SIZE, {"repository": repository, "digest": digest}).scalar()

    def stored_size(self, digest: str) -> int | None:
        with self._read() as conn:
            return conn.execute(select(t.blobs.c.size).where(t.blobs.c.digest == digest)).scalar()

    def link(self, repository: str, digest: str, size: int) -> None:
        self._store.write(lambda conn: self._link_blob(conn, repository, digest, size))

    def unlink(self, repository: str, digest: str) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            result = conn.execute(
                delete(t.repository_blobs).where(
                    t.repository_blobs.c.repository_id == repo_id, t.repository_blobs.c.digest == digest
                )
            )
            return result.rowcount > 0

        return self._store.write(work)

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        if not digests:
            return []
        query = (
            select(t.repository_blobs.c.digest)
            .join(t.repositories, t.repositories.c.id == t.repository_blobs.c.repository_id)
            .where(t.repositories.c.name == repository, t.repository_blobs.c.digest.in_(list(digests)))
        )
        with self._read() as conn:
            present = set(conn.execute(query).scalars())
        return [d for d in digests if d not in present]


_GET_UPLOAD = (
    select(t.uploads, t.repositories.c.name)
    .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
    .where(t.uploads.c.id == bindparam("upload_id"))
)


class SqlUploads(_Base):
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
        return UploadRecord(row.id, row.name, row.offset, _aware(row.created_at), _aware(row.updated_at), row.owner)

    def set_offset(self, upload_id: str, expected: int, offset: int) -> bool:
        def work(conn: Connection) -> bool:
            result = conn.execute(
                update(t.uploads)
                .where(t.uploads.c.id == upload_id, t.uploads.c.offset == expected)
                .values(offset=offset, updated_at=utcnow())
            )
            return result.rowcount == 1

        return self._store.write(work)

    def complete(self, upload_id: str, digest: str, size: int) -> None:
        def work(conn: Connection) -> None:
            row = conn.execute(
                select(t.repositories.c.name)
                .join(t.uploads, t.uploads.c.repository_id == t.repositories.c.id)
                .where(t.uploads.c.id == upload_id)
            ).first()
            if row is None:
                return
            self._link_blob(conn, row.name, digest, size)
            conn.execute(delete(t.uploads).where(t.uploads.c.id == upload_id))

        self._store.write(work)

    def delete(self, upload_id: str) -> bool:
        return self._store.write(
            lambda conn: conn.execute(delete(t.uploads).where(t.uploads.c.id == upload_id)).rowcount > 0
        )


def _manifest_record(row: Any) -> ManifestRecord:
    return ManifestRecord(
        digest=row.digest,
        media_type=row.media_type,
        size=row.size,
        content=bytes(row.content),
        artifact_type=row.artifact_type,
        subject=row.subject_digest,
        annotations=row.annotations,
        created_at=_aware(row.created_at),
    )


_MANIFEST_COLUMNS = (
    t.manifests.c.digest,
    t.manifests.c.media_type,
    t.manifests.c.size,
    t.manifests.c.content,
    t.manifests.c.artifact_type,
    t.manifests.c.subject_digest,
    t.manifests.c.annotations,
    t.manifests.c.created_at,
)


_GET_MANIFEST = (
    select(*_MANIFEST_COLUMNS)
    .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
    .where(t.repositories.c.name == bindparam("repository"), t.manifests.c.digest == bindparam("digest"))
)
_RESOLVE_TAG = (
    select(*_MANIFEST_COLUMNS)
    .select_from(
        t.repositories.join(t.tags, t.tags.c.repository_id == t.repositories.c.id).join(
            t.manifests,
            and_(
                t.manifests.c.repository_id == t.tags.c.repository_id,
                t.manifests.c.digest == t.tags.c.manifest_digest,
            ),
        )
    )
    .where(
        t.repositories.c.name == bindparam("repository"),
        t.tags.c.name == bindparam("tag"),
        t.tags.c.lifetime_end.is_(None),
    )
)


class SqlManifests(_Base):
    def get(self, repository: str, digest: str) -> ManifestRecord | None:
        with self._read() as conn:
            row = conn.execute(_GET_MANIFEST, {"repository": repository, "digest": digest}).first()
        return None if row is None else _manifest_record(row)

    def resolve_tag(self, repository: str, tag: str) -> ManifestRecord | None:
        with self._read() as conn:
            row = conn.execute(_RESOLVE_TAG, {"repository": repository, "tag": tag}).first()
        return None if row is None else _manifest_record(row)

    def put(self, repository: str, manifest: NewManifest, tag: str | None, *, tag_immutable: bool = False) -> None:
        def work(conn: Connection) -> None:
            now = utcnow()
            repo_id = self._ensure_repo(conn, repository)
            # Checked again inside the transaction: garbage collection may have removed an
            # unreferenced blob since the service's check.
            gone = _unlinked(conn, repo_id, manifest.blob_refs)
            if gone:
                raise MissingBlobsError(gone)
            exists = conn.execute(
                select(t.manifests.c.id).where(
                    t.manifests.c.repository_id == repo_id, t.manifests.c.digest == manifest.digest
                )
            ).scalar()
            if exists is None:
                manifest_id = conn.execute(
                    insert(t.manifests)
                    .values(
                        repository_id=repo_id,
                        digest=manifest.digest,
                        media_type=manifest.media_type,
                        size=len(manifest.content),
                        content=manifest.content,
                        artifact_type=manifest.artifact_type,
                        subject_digest=manifest.subject,
                        annotations=manifest.annotations,
                        created_at=now,
                    )
                    .returning(t.manifests.c.id)
                ).scalar_one()
                refs = [{"manifest_id": manifest_id, "digest": d, "is_manifest": 0} for d in manifest.blob_refs]
                refs += [{"manifest_id": manifest_id, "digest": d, "is_manifest": 1} for d in manifest.manifest_refs]
                if refs:
                    conn.execute(insert(t.manifest_references), refs)
            if tag is not None:
                _move_tag(conn, repo_id, tag, manifest.digest, immutable=tag_immutable)
            conn.execute(update(t.repositories).where(t.repositories.c.id == repo_id).values(time_last_pushed=now))

        self._store.write(work)

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        if not digests:
            return []
        query = (
            select(t.manifests.c.digest)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.digest.in_(list(digests)))
        )
        with self._read() as conn:
            present = set(conn.execute(query).scalars())
        return [d for d in digests if d not in present]

    def delete(self, repository: str, digest: str) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            removed = conn.execute(
                delete(t.manifests).where(t.manifests.c.repository_id == repo_id, t.manifests.c.digest == digest)
            ).rowcount
            if not removed:
                return False
            conn.execute(
                update(t.tags)
                .where(
                    t.tags.c.repository_id == repo_id,
                    t.tags.c.manifest_digest == digest,
                    t.tags.c.lifetime_end.is_(None),
                )
                .values(lifetime_end=utcnow())
            )
            return True

        return self._store.write(work)

    def referrers(self, repository: str, subject: str, artifact_type: str | None) -> list[ManifestRecord]:
        query = (
            select(*_MANIFEST_COLUMNS)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.subject_digest == subject)
            .order_by(t.manifests.c.created_at, t.manifests.c.digest)
        )
        if artifact_type is not None:
            query = query.where(t.manifests.c.artifact_type == artifact_type)
        with self._read() as conn:
            return [_manifest_record(row) for row in conn.execute(query)]


def _unlinked(conn: Connection, repo_id: int, digests: Sequence[str]) -> list[str]:
    if not digests:
        return []
    rb = t.repository_blobs.c
    present = set(
        conn.execute(select(rb.digest).where(rb.repository_id == repo_id, rb.digest.in_(list(digests)))).scalars()
    )
    return [d for d in digests if d not in present]


def _move_tag(conn: Connection, repo_id: int, tag: str, digest: str, *, immutable: bool) -> None:
    """Point ``tag`` at ``digest``, ending its previous lifetime (history is kept).

    Tag moves in one repository queue on its row: without that, on PostgreSQL N writers racing
    for one tag all read the same current row and all but one fail on ``uq_tags_current`` each
    round, so a loser could exhaust the write retries. ``FOR NO KEY UPDATE`` does not block the
    foreign-key checks of concurrent inserts; SQLite ignores it (``BEGIN IMMEDIATE`` serializes).
    The time is read once the lock is held, so lifetimes start in the order the moves happened
    (a time taken at the start of the transaction could end a newer lifetime before it began).
    """
    conn.execute(select(t.repositories.c.id).where(t.repositories.c.id == repo_id).with_for_update(key_share=True))
    now = utcnow()
    current = conn.execute(
        select(t.tags.c.id, t.tags.c.manifest_digest).where(
            t.tags.c.repository_id == repo_id, t.tags.c.name == tag, t.tags.c.lifetime_end.is_(None)
        )
    ).first()
    if current is not None:
        if current.manifest_digest == digest:
            return
        if immutable:
            raise ImmutableTagError(tag, current.manifest_digest)
        # ``lifetime_end IS NULL``: a concurrent tag delete may have ended it; keep its end time.
        conn.execute(
            update(t.tags).where(t.tags.c.id == current.id, t.tags.c.lifetime_end.is_(None)).values(lifetime_end=now)
        )
    conn.execute(insert(t.tags).values(repository_id=repo_id, name=tag, manifest_digest=digest, lifetime_start=now))


def _list_tags_query(after: bool, limited: bool) -> Any:
    name = t.tags.c.name
    query = (
        select(name)
        .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
        .where(t.repositories.c.name == bindparam("repository"), t.tags.c.lifetime_end.is_(None))
        .order_by(func.lower(name), name)
    )
    if after:
        last: BindParameter[str] = bindparam("last", type_=String)
        last_lower: BindParameter[str] = bindparam("last_lower", type_=String)
        query = query.where(or_(func.lower(name) > last_lower, and_(func.lower(name) == last_lower, name > last)))
    if limited:
        query = query.limit(bindparam("limit", type_=Integer))
    return query


# (after ``last``?, limited?) -> the statement
_LIST_TAGS = {(a, n): _list_tags_query(a, n) for a in (False, True) for n in (False, True)}


class SqlTags(_Base):
    def list_names(self, repository: str, limit: int | None, last: str | None) -> list[str]:
        params: dict[str, Any] = {"repository": repository}
        if last is not None:
            params.update(last=last, last_lower=last.lower())
        if limit is not None:
            params["limit"] = limit
        with self._read() as conn:
            return list(conn.execute(_LIST_TAGS[last is not None, limit is not None], params).scalars())

    def delete(self, repository: str, tag: str) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            result = conn.execute(
                update(t.tags)
                .where(t.tags.c.repository_id == repo_id, t.tags.c.name == tag, t.tags.c.lifetime_end.is_(None))
                .values(lifetime_end=utcnow())
            )
            return result.rowcount > 0

        return self._store.write(work)

    def pointing_to(self, repository: str, digest: str) -> list[str]:
        query = (
            select(t.tags.c.name)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(
                t.repositories.c.name == repository,
                t.tags.c.manifest_digest == digest,
                t.tags.c.lifetime_end.is_(None),
            )
            .order_by(t.tags.c.name)
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def history(self, repository: str, tag: str) -> list[TagRecord]:
        query = (
            select(t.tags)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(t.repositories.c.name == repository, t.tags.c.name == tag)
            .order_by(t.tags.c.lifetime_start.desc(), t.tags.c.id.desc())
        )
        with self._read() as conn:
            return [
                TagRecord(
                    row.name,
                    row.manifest_digest,
                    _aware(row.lifetime_start),
                    None if row.lifetime_end is None else _aware(row.lifetime_end),
                )
                for row in conn.execute(query)
            ]


class SqlMetadataStore:
    """:class:`~modelyard.metadata.base.MetadataStore` on one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        options: dict[str, Any] = {"modelyard_read": True}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        self.reader = engine.execution_options(**options)
        self.repositories = SqlRepositories(self)
        self.blobs = SqlBlobLinks(self)
        self.uploads = SqlUploads(self)
        self.manifests = SqlManifests(self)
        self.tags = SqlTags(self)
        from modelyard.metadata.sql_control import SqlCompartments, SqlRegistryConfig, SqlRepositoryAdmin

        self.compartments = SqlCompartments(self)
        self.registry_config = SqlRegistryConfig(self)
        self.repo_admin = SqlRepositoryAdmin(self)
        from modelyard.metadata import sql_identity as ident

        self.principals = ident.SqlPrincipals(self)
        self.api_keys = ident.SqlApiKeys(self)
        self.policies = ident.SqlPolicies(self)
        self.login_throttle = ident.SqlLoginThrottle(self)
        self.audit = ident.SqlAuditLog(self)
        self.secrets = ident.SqlSecrets(self)
        from modelyard.metadata.sql_gc import SqlGarbage

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
        self.engine.dispose()
