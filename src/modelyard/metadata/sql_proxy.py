"""SQL implementation of :class:`~modelyard.metadata.proxy.ProxyStore` (tables of migration 0016)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from modelyard.domain.events import Event
from modelyard.domain.proxy import ProxyRule
from modelyard.domain.records import AlreadyExistsError
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.outbox import insert_events
from modelyard.metadata.sql_base import SqlPart

r = t.proxy_rules.c
g = t.proxy_tags.c
_COLUMNS = (r.id, r.prefix, r.upstream_url, r.upstream_prefix, r.username, r.secret_ciphertext, r.tls_verify,
            r.tag_ttl_seconds, r.created_by, r.created_at)  # fmt: skip


def _rule(row: Any) -> ProxyRule:
    return ProxyRule(
        id=row.id, prefix=row.prefix, upstream_url=row.upstream_url, upstream_prefix=row.upstream_prefix,
        username=row.username, has_password=row.secret_ciphertext is not None, tls_verify=row.tls_verify,
        tag_ttl_seconds=row.tag_ttl_seconds, created_by=row.created_by, created_at=as_utc(row.created_at),
    )  # fmt: skip


class SqlProxy(SqlPart):
    def create(
        self,
        prefix: str,
        upstream_url: str,
        upstream_prefix: str,
        username: str | None,
        secret_ciphertext: str | None,
        tls_verify: bool,
        tag_ttl_seconds: int,
        created_by: str | None,
        *,
        events: Sequence[Event] = (),
    ) -> ProxyRule:
        values = {
            "prefix": prefix, "upstream_url": upstream_url, "upstream_prefix": upstream_prefix,
            "username": username, "secret_ciphertext": secret_ciphertext, "tls_verify": tls_verify,
            "tag_ttl_seconds": tag_ttl_seconds, "created_by": created_by, "created_at": utcnow(),
        }  # fmt: skip

        def work(conn: Connection) -> ProxyRule:
            if conn.execute(select(r.id).where(r.prefix == prefix)).first() is not None:
                raise AlreadyExistsError(prefix)
            rule = _rule(conn.execute(insert(t.proxy_rules).values(**values).returning(*_COLUMNS)).one())
            insert_events(conn, events)
            return rule

        try:
            return self._store.write(work)
        except IntegrityError:  # a concurrent create of the same prefix
            raise AlreadyExistsError(prefix) from None

    def all_rules(self) -> list[ProxyRule]:
        with self._read() as conn:
            return [_rule(row) for row in conn.execute(select(*_COLUMNS).order_by(r.prefix))]

    def secret_ciphertext(self, rule_id: int) -> str | None:
        with self._read() as conn:
            value = conn.execute(select(r.secret_ciphertext).where(r.id == rule_id)).scalar()
        return str(value) if value is not None else None

    def delete(self, prefix: str, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            gone = conn.execute(delete(t.proxy_rules).where(r.prefix == prefix).returning(r.id)).first() is not None
            if gone:
                insert_events(conn, events)
            return gone

        return self._store.write(work)

    def tag_checked(self, repository: str, tag: str) -> tuple[str, datetime] | None:
        with self._read() as conn:
            row = conn.execute(select(g.digest, g.fetched_at).where(g.repository == repository, g.tag == tag)).first()
        return (row.digest, as_utc(row.fetched_at)) if row is not None else None

    def record_tag(self, repository: str, tag: str, digest: str, checked_at: datetime) -> None:
        def work(conn: Connection) -> None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(t.proxy_tags).values(
                repository=repository, tag=tag, digest=digest, fetched_at=checked_at
            )
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["repository", "tag"], set_={"digest": digest, "fetched_at": checked_at}
                )
            )

        self._store.write(work)

    def manifests_using(self, repository: str, blob: str) -> list[str]:
        m, ref = t.manifests.c, t.manifest_references.c
        query = (
            select(m.digest)
            .join(t.manifest_references, ref.manifest_id == m.id)
            .join(t.repositories, t.repositories.c.id == m.repository_id)
            .where(t.repositories.c.name == repository, ref.digest == blob, ref.is_manifest == 0)
        )
        with self._read() as conn:
            return [str(row.digest) for row in conn.execute(query)]
