"""The control-plane part of the SQL metadata store: compartments, registry configuration, and
repository create / configure / delete / list with statistics.

Statistics (image count, layer count and bytes) are computed on read with grouped subqueries
rather than kept as counters, so they can never drift from what the repository holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.domain.aliases import gates_from, gates_json, protected_from, protected_json
from modelyard.domain.events import Event
from modelyard.domain.records import (
    AlreadyExistsError,
    CompartmentRecord,
    NotEmptyError,
    RegistryConfigRecord,
    RepositoryDetails,
    RepositoryFilter,
    RepositorySettings,
    VersionRecord,
)
from modelyard.domain.reference import split_compartment
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_base import SqlPart, insert_repository
from modelyard.metadata.sql_identity import forget_policy

if TYPE_CHECKING:
    pass

_DEFAULT_CONFIG = RegistryConfigRecord(
    create_repository_on_first_push=True, create_compartment_on_first_push=True, updated_at=None
)
_COMPARTMENT_FIELDS = {"description", "create_repository_on_first_push"}
_REPOSITORY_FIELDS = {
    "description",
    "is_public",
    "is_immutable",
    "immutable_tag_patterns",
    "mutable_tag_exclusions",
    "readme_content",
    "readme_format",
    "labels",
    "protected_aliases",
    "promotion_gates",
}


def _compartment(row: Any) -> CompartmentRecord:
    return CompartmentRecord(
        id=row.id,
        name=row.name,
        description=row.description,
        create_repository_on_first_push=row.create_repository_on_first_push,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        repository_count=int(row.repository_count or 0),
    )


class SqlCompartments(SqlPart):
    def _query(self) -> Any:
        counts = (
            select(t.repositories.c.compartment_id, func.count().label("repository_count"))
            .group_by(t.repositories.c.compartment_id)
            .subquery()
        )
        return (
            select(t.compartments, counts.c.repository_count)
            .outerjoin(counts, counts.c.compartment_id == t.compartments.c.id)
            .order_by(t.compartments.c.name)
        )

    def get(self, name: str) -> CompartmentRecord | None:
        with self._read() as conn:
            row = conn.execute(self._query().where(t.compartments.c.name == name)).first()
        return None if row is None else _compartment(row)

    def page(self, limit: int | None, last: str | None) -> list[CompartmentRecord]:
        query = self._query()
        if last is not None:
            query = query.where(t.compartments.c.name > last)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_compartment(row) for row in conn.execute(query)]

    def create(
        self, name: str, description: str, create_on_first_push: bool | None, *, events: Sequence[Event] = ()
    ) -> CompartmentRecord:
        now = utcnow()

        def work(conn: Connection) -> None:
            if conn.execute(select(t.compartments.c.id).where(t.compartments.c.name == name)).first():
                raise AlreadyExistsError(name)
            conn.execute(
                insert(t.compartments).values(
                    name=name,
                    description=description,
                    create_repository_on_first_push=create_on_first_push,
                    created_at=now,
                    updated_at=now,
                )
            )
            insert_events(conn, events)

        try:
            self._store.write(work)
        except IntegrityError:
            raise AlreadyExistsError(name) from None
        record = self.get(name)
        assert record is not None
        return record

    def update(self, name: str, changes: dict[str, Any], *, events: Sequence[Event] = ()) -> CompartmentRecord | None:
        values = {k: v for k, v in changes.items() if k in _COMPARTMENT_FIELDS}

        def work(conn: Connection) -> bool:
            statement = update(t.compartments).where(t.compartments.c.name == name)
            if not conn.execute(statement.values(**values, updated_at=utcnow())).rowcount:
                return False
            insert_events(conn, events)
            return True

        return self.get(name) if self._store.write(work) else None

    def delete(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            compartment_id = conn.execute(select(t.compartments.c.id).where(t.compartments.c.name == name)).scalar()
            if compartment_id is None:
                return False
            holds = conn.execute(
                select(func.count()).where(t.repositories.c.compartment_id == compartment_id)
            ).scalar_one()
            if holds:
                raise NotEmptyError(f"{holds} repositories")
            conn.execute(delete(t.compartments).where(t.compartments.c.id == compartment_id))
            forget_policy(conn, f"compartment:{name}")
            insert_events(conn, events)
            return True

        return self._store.write(work)


class SqlRegistryConfig(SqlPart):
    def get(self) -> RegistryConfigRecord:
        with self._read() as conn:
            row = conn.execute(select(t.registry_config).where(t.registry_config.c.id == 1)).first()
        if row is None:
            return _DEFAULT_CONFIG
        return RegistryConfigRecord(
            bool(row.create_repository_on_first_push),
            bool(row.create_compartment_on_first_push),
            as_utc(row.updated_at),
        )

    def put(
        self, create_repository: bool, create_compartment: bool, *, events: Sequence[Event] = ()
    ) -> RegistryConfigRecord:
        values = {
            "create_repository_on_first_push": create_repository,
            "create_compartment_on_first_push": create_compartment,
            "updated_at": utcnow(),
        }

        def work(conn: Connection) -> None:
            changed = conn.execute(update(t.registry_config).where(t.registry_config.c.id == 1).values(**values))
            if not changed.rowcount:
                conn.execute(insert(t.registry_config).values(id=1, **values))
            insert_events(conn, events)

        self._store.write(work)
        return self.get()


def _settings(row: Any) -> RepositorySettings:
    return RepositorySettings(
        description=row.description,
        is_public=bool(row.is_public),
        is_immutable=bool(row.is_immutable),
        immutable_tag_patterns=tuple(row.immutable_tag_patterns or ()),
        mutable_tag_exclusions=tuple(row.mutable_tag_exclusions or ()),
        readme_content=row.readme_content,
        readme_format=row.readme_format,
        labels=dict(row.labels or {}),
        protected_aliases=protected_from(row.protected_aliases),
        promotion_gates=gates_from(row.promotion_gates),
    )


def _settings_values(settings: RepositorySettings) -> dict[str, Any]:
    return {
        "description": settings.description,
        "is_public": settings.is_public,
        "is_immutable": settings.is_immutable,
        "immutable_tag_patterns": list(settings.immutable_tag_patterns),
        "mutable_tag_exclusions": list(settings.mutable_tag_exclusions),
        "readme_content": settings.readme_content,
        "readme_format": settings.readme_format,
        "labels": dict(settings.labels),
        "protected_aliases": protected_json(settings.protected_aliases),
        "promotion_gates": gates_json(settings.promotion_gates),
    }


class SqlRepositoryAdmin(SqlPart):
    def _query(self) -> Any:
        r = t.repositories
        images = (
            select(t.manifests.c.repository_id, func.count().label("image_count"))
            .group_by(t.manifests.c.repository_id)
            .subquery()
        )
        layers = (
            select(
                t.repository_blobs.c.repository_id,
                func.count().label("layer_count"),
                func.sum(t.blobs.c.size).label("layers_size"),
            )
            .join(t.blobs, t.blobs.c.digest == t.repository_blobs.c.digest)
            .group_by(t.repository_blobs.c.repository_id)
            .subquery()
        )
        return (
            select(
                r,
                t.compartments.c.name.label("compartment_name"),
                images.c.image_count,
                layers.c.layer_count,
                layers.c.layers_size,
            )
            .outerjoin(t.compartments, t.compartments.c.id == r.c.compartment_id)
            .outerjoin(images, images.c.repository_id == r.c.id)
            .outerjoin(layers, layers.c.repository_id == r.c.id)
            .order_by(r.c.name)
        )

    @staticmethod
    def _details(row: Any) -> RepositoryDetails:
        return RepositoryDetails(
            id=row.id,
            name=row.name,
            compartment=row.compartment_name,
            display_name=row.display_name,
            settings=_settings(row),
            created_by=row.created_by,
            lifecycle_state=row.lifecycle_state,
            created_at=as_utc(row.created_at),
            time_last_pushed=None if row.time_last_pushed is None else as_utc(row.time_last_pushed),
            image_count=int(row.image_count or 0),
            layer_count=int(row.layer_count or 0),
            layers_size_in_bytes=int(row.layers_size or 0),
        )

    def details(self, name: str) -> RepositoryDetails | None:
        with self._read() as conn:
            row = conn.execute(self._query().where(t.repositories.c.name == name)).first()
        return None if row is None else self._details(row)

    def search(self, where: RepositoryFilter, limit: int | None, last: str | None) -> list[RepositoryDetails]:
        query = self._query()
        r = t.repositories.c
        if where.compartment is not None:
            query = query.where(t.compartments.c.name == where.compartment)
        if where.is_public is not None:
            query = query.where(r.is_public == where.is_public)
        if where.name_prefix:
            query = query.where(r.name.startswith(where.name_prefix, autoescape=True))
        if last is not None:
            query = query.where(r.name > last)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [self._details(row) for row in conn.execute(query)]

    def create(
        self,
        name: str,
        settings: RepositorySettings,
        created_by: str | None,
        *,
        create_compartment: bool,
        events: Sequence[Event] = (),
    ) -> RepositoryDetails:
        def work(conn: Connection) -> None:
            if self._repo_id(conn, name) is not None:
                raise AlreadyExistsError(name)
            compartment, _ = split_compartment(name)
            if compartment is not None and not create_compartment:
                exists = conn.execute(select(t.compartments.c.id).where(t.compartments.c.name == compartment)).first()
                if exists is None:
                    raise LookupError(compartment)
            insert_repository(conn, name, created_by=created_by, values=_settings_values(settings))
            insert_events(conn, events)

        try:
            self._store.write(work)
        except IntegrityError:
            raise AlreadyExistsError(name) from None
        record = self.details(name)
        assert record is not None
        return record

    def update(self, name: str, changes: dict[str, Any], *, events: Sequence[Event] = ()) -> RepositoryDetails | None:
        values = {k: v for k, v in changes.items() if k in _REPOSITORY_FIELDS}
        for key in ("immutable_tag_patterns", "mutable_tag_exclusions"):
            if key in values:
                values[key] = list(values[key])
        if values:

            def work(conn: Connection) -> bool:
                statement = update(t.repositories).where(t.repositories.c.name == name)
                if not conn.execute(statement.values(**values)).rowcount:
                    return False
                insert_events(conn, events)
                return True

            if not self._store.write(work):
                return None
        return self.details(name)

    def delete(self, name: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            repo_id = self._repo_id(conn, name)
            if repo_id is None:
                return False
            # Children first, explicitly: SQLite only cascades with foreign_keys=ON.
            manifest_ids = select(t.manifests.c.id).where(t.manifests.c.repository_id == repo_id)
            conn.execute(delete(t.manifest_references).where(t.manifest_references.c.manifest_id.in_(manifest_ids)))
            for table in (t.tags, t.tag_history, t.manifests, t.repository_blobs, t.uploads):
                conn.execute(delete(table).where(table.c.repository_id == repo_id))
            conn.execute(delete(t.repositories).where(t.repositories.c.id == repo_id))
            forget_policy(conn, f"repository:{name}")
            insert_events(conn, events)
            return True

        return self._store.write(work)

    def versions(self, name: str, limit: int | None, last: str | None) -> list[VersionRecord]:
        tag = t.tags.c
        m = t.manifests.c
        query = (
            select(
                tag.name,
                tag.lifetime_start,
                m.digest,
                m.media_type,
                m.size,
                m.artifact_type,
                m.annotations,
                m.created_at,
            )
            .select_from(
                t.repositories.join(t.tags, tag.repository_id == t.repositories.c.id).join(
                    t.manifests, and_(m.repository_id == tag.repository_id, m.digest == tag.manifest_digest)
                )
            )
            .where(t.repositories.c.name == name, tag.lifetime_end.is_(None))
            .order_by(tag.name)
        )
        if last is not None:
            query = query.where(tag.name > last)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [
                VersionRecord(
                    tag=row.name,
                    digest=row.digest,
                    media_type=row.media_type,
                    size=row.size,
                    artifact_type=row.artifact_type,
                    annotations=row.annotations,
                    created_at=as_utc(row.created_at),
                    tagged_at=as_utc(row.lifetime_start),
                )
                for row in conn.execute(query)
            ]
