"""Manifests and tags in SQL: push (with the tag move and its history), pull, referrers, lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from modelyard.domain.aliases import TagChange
from modelyard.domain.events import Event
from modelyard.domain.records import (
    ImmutableTagError,
    ManifestRecord,
    MissingBlobsError,
    MissingManifestsError,
    NewManifest,
    ReferencedManifestError,
    TagRecord,
)
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.fastread import as_json, as_time
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_aliases import record_change
from modelyard.metadata.sql_base import SqlPart


def _manifest_record(row: Any) -> ManifestRecord:
    """From a row of :data:`_MANIFEST_COLUMNS` (a SQLAlchemy row or a raw DB-API tuple)."""
    digest, media_type, size, content, artifact_type, subject, annotations, created_at = row
    return ManifestRecord(
        digest=digest,
        media_type=media_type,
        size=size,
        content=bytes(content),
        artifact_type=artifact_type,
        subject=subject,
        annotations=as_json(annotations),
        created_at=as_time(created_at),
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


class SqlManifests(SqlPart):
    def get(self, repository: str, digest: str) -> ManifestRecord | None:
        row = self._store.fast.first(_GET_MANIFEST, {"repository": repository, "digest": digest})
        return None if row is None else _manifest_record(row)

    def resolve_tag(self, repository: str, tag: str) -> ManifestRecord | None:
        row = self._store.fast.first(_RESOLVE_TAG, {"repository": repository, "tag": tag})
        return None if row is None else _manifest_record(row)

    def put(
        self,
        repository: str,
        manifest: NewManifest,
        tag: str | None,
        *,
        tag_immutable: bool = False,
        events: Callable[[str | None], Sequence[Event]] | None = None,
        change: TagChange | None = None,
        verify_references: bool = True,
    ) -> None:
        def work(conn: Connection) -> None:
            now = utcnow()
            repo_id = self._ensure_repo(conn, repository)
            # Before anything is read: a retention run deleting manifests holds this row FOR
            # UPDATE (sql_lifecycle.delete_versions), so a put waits for it and then sees what it
            # deleted as gone (and stores it again), rather than tagging a manifest found a moment
            # before its deletion committed.
            conn.execute(
                select(t.repositories.c.id).where(t.repositories.c.id == repo_id).with_for_update(key_share=True)
            )
            # Checked again inside the transaction: garbage collection may have removed an
            # unreferenced blob since the service's check.
            gone = _unlinked(conn, repo_id, manifest.blob_refs) if verify_references else []
            if gone:
                raise MissingBlobsError(gone)
            absent = _lock_children(conn, repo_id, manifest.manifest_refs) if verify_references else []
            if absent:
                raise MissingManifestsError(absent)
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
            previous = None
            if tag is not None:
                previous = _move_tag(conn, repo_id, tag, manifest.digest, immutable=tag_immutable, change=change)
            conn.execute(update(t.repositories).where(t.repositories.c.id == repo_id).values(time_last_pushed=now))
            if events is not None:
                insert_events(conn, events(previous))

        self._store.write(work)

    def missing(self, repository: str, digests: Sequence[str]) -> list[str]:
        return self._missing_in(t.manifests, repository, digests)

    def delete(
        self, repository: str, digest: str, *, events: Sequence[Event] = (), change: TagChange | None = None
    ) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            # Lock the row first, then look for indexes listing it: an index put that locked it
            # (``_lock_children``) has committed by now and its references are seen; one that
            # comes later waits for this transaction and then finds the manifest gone.
            found = conn.execute(
                select(t.manifests.c.id)
                .where(t.manifests.c.repository_id == repo_id, t.manifests.c.digest == digest)
                .with_for_update()
            ).scalar()
            if found is None:
                return False
            indexes = _indexes_listing(conn, repo_id, digest)
            if indexes:
                raise ReferencedManifestError(digest, indexes)
            conn.execute(delete(t.manifests).where(t.manifests.c.id == found))
            now = utcnow()
            ended = conn.execute(
                update(t.tags)
                .where(
                    t.tags.c.repository_id == repo_id,
                    t.tags.c.manifest_digest == digest,
                    t.tags.c.lifetime_end.is_(None),
                )
                .values(lifetime_end=now)
                .returning(t.tags.c.name)
            ).scalars()
            for tag in sorted(ended):
                record_change(conn, repo_id, tag, digest, None, change or TagChange("delete"), now)
            insert_events(conn, events)
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
    """Those of ``digests`` not linked into the repository, read while their blob rows are
    share-locked: a garbage collector condemning one of them (``sql_gc.py``) either finished
    first, and the link is seen gone, or waits until this manifest's references are committed
    and then sees it referenced."""
    if not digests:
        return []
    ordered = sorted(set(digests))
    conn.execute(
        select(t.blobs.c.digest)
        .where(t.blobs.c.digest.in_(ordered))
        .order_by(t.blobs.c.digest)
        .with_for_update(read=True)
    )
    rb = t.repository_blobs.c
    present = set(
        conn.execute(select(rb.digest).where(rb.repository_id == repo_id, rb.digest.in_(list(digests)))).scalars()
    )
    return [d for d in digests if d not in present]


def _lock_children(conn: Connection, repo_id: int, digests: Sequence[str]) -> list[str]:
    """Those of an index's child ``digests`` that are not manifests of the repository; the
    others are locked (``FOR KEY SHARE``) until the put commits, so a concurrent delete of one
    waits and then sees the index. SQLite ignores the lock: ``BEGIN IMMEDIATE`` serializes."""
    if not digests:
        return []
    m = t.manifests.c
    present = set(
        conn.execute(
            select(m.digest)
            .where(m.repository_id == repo_id, m.digest.in_(list(digests)))
            .with_for_update(read=True, key_share=True)
        ).scalars()
    )
    return [d for d in digests if d not in present]


def _indexes_listing(conn: Connection, repo_id: int, digest: str) -> list[str]:
    """Digests of the manifests (indexes) of the repository that list ``digest`` as a child."""
    refs = t.manifest_references.c
    query = (
        select(t.manifests.c.digest)
        .join(t.manifest_references, refs.manifest_id == t.manifests.c.id)
        .where(t.manifests.c.repository_id == repo_id, refs.digest == digest, refs.is_manifest == 1)
        .order_by(t.manifests.c.digest)
    )
    return list(conn.execute(query).scalars())


def _move_tag(
    conn: Connection, repo_id: int, tag: str, digest: str, *, immutable: bool, change: TagChange | None = None
) -> str | None:
    """Point ``tag`` at ``digest``, ending its previous lifetime and appending the move to the
    tag's history (``change``: who and how; a push by an unknown actor without it); returns the
    digest it pointed to before (``None``: the tag is new).

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
            return digest
        if immutable:
            raise ImmutableTagError(tag, current.manifest_digest)
        # ``lifetime_end IS NULL``: a concurrent tag delete may have ended it; keep its end time.
        conn.execute(
            update(t.tags).where(t.tags.c.id == current.id, t.tags.c.lifetime_end.is_(None)).values(lifetime_end=now)
        )
    conn.execute(insert(t.tags).values(repository_id=repo_id, name=tag, manifest_digest=digest, lifetime_start=now))
    previous = None if current is None else str(current.manifest_digest)
    record_change(conn, repo_id, tag, previous, digest, change, now)
    return previous


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

# The repository (its id and creation time: a repository deleted and created again is another),
# the number of its current tag rows and the highest id of all its tag rows. Every change to the
# set of current tag names changes it: a new tag or a move inserts a row with a higher id (rows
# are only inserted under the repository's row lock, so ids grow in commit order, and are never
# deleted but with the repository), and a deletion ends a row (lowering the count) without
# making any other row current again -- so equal values mean the same current rows. Two scans
# of the repository's index entries (~30-50 us for 150 tags), no rows sent back but one.
_TAGS_STATE = select(
    t.repositories.c.id,
    t.repositories.c.created_at,
    select(func.count())
    .select_from(t.tags)
    .where(t.tags.c.repository_id == t.repositories.c.id, t.tags.c.lifetime_end.is_(None))
    .scalar_subquery(),
    select(func.max(t.tags.c.id)).where(t.tags.c.repository_id == t.repositories.c.id).scalar_subquery(),
).where(t.repositories.c.name == bindparam("repository"))


class SqlTags(SqlPart):
    def list_names(self, repository: str, limit: int | None, last: str | None) -> list[str]:
        params: dict[str, Any] = {"repository": repository}
        if last is not None:
            params.update(last=last, last_lower=last.lower())
        if limit is not None:
            params["limit"] = limit
        return [row[0] for row in self._store.fast.rows(_LIST_TAGS[last is not None, limit is not None], params)]

    def list_state(self, repository: str) -> tuple[Any, ...] | None:
        row = self._store.fast.first(_TAGS_STATE, {"repository": repository})
        return None if row is None else tuple(row)

    def delete(
        self, repository: str, tag: str, *, events: Sequence[Event] = (), change: TagChange | None = None
    ) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, repository)
            if repo_id is None:
                return False
            now = utcnow()
            ended = conn.execute(
                update(t.tags)
                .where(t.tags.c.repository_id == repo_id, t.tags.c.name == tag, t.tags.c.lifetime_end.is_(None))
                .values(lifetime_end=now)
                .returning(t.tags.c.manifest_digest)
            ).scalar()
            if ended is None:
                return False
            record_change(conn, repo_id, tag, str(ended), None, change or TagChange("delete"), now)
            insert_events(conn, events)
            return True

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
                    as_utc(row.lifetime_start),
                    None if row.lifetime_end is None else as_utc(row.lifetime_end),
                )
                for row in conn.execute(query)
            ]
