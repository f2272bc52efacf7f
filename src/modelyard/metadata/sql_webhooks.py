"""SQL implementation of :class:`~modelyard.metadata.webhooks.WebhookStore` (tables of migration 0012)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.domain.events import EVENT_TYPES, Event, event_from_row
from modelyard.domain.webhooks import AttemptRecord, AttemptResult, DeliveryRecord, NewDelivery, WebhookRecord
from modelyard.metadata import tables as t
from modelyard.metadata.clock import as_utc, utcnow
from modelyard.metadata.outbox import insert_events, move_cursor, read_cursor
from modelyard.metadata.sql_base import SqlPart

w = t.webhooks.c
d = t.webhook_deliveries.c
a = t.webhook_attempts.c


def _maybe(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _webhook(row: Any) -> WebhookRecord:
    return WebhookRecord(
        id=row.id, scope=row.scope, url=row.url, event_types=tuple(row.event_types), description=row.description,
        active=row.active, created_by=row.created_by, created_at=as_utc(row.created_at),
    )  # fmt: skip


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id, webhook_id=row.webhook_id, event_id=row.event_id, event_type=row.event_type,
        resource=row.resource, state=row.state, attempts=row.attempts, tries_left=row.tries_left,
        next_attempt_at=_maybe(row.next_attempt_at), last_status_code=row.last_status_code,
        last_error=row.last_error, created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
    )  # fmt: skip


_WEBHOOK_COLUMNS = (w.id, w.scope, w.url, w.event_types, w.description, w.active, w.created_by, w.created_at)


class SqlWebhooks(SqlPart):
    def create(
        self,
        scope: str,
        url: str,
        event_types: Sequence[str],
        description: str,
        secret_ciphertext: str,
        created_by: str | None,
        *,
        events: Callable[[int], Sequence[Event]] = lambda _id: (),
    ) -> WebhookRecord:
        def work(conn: Connection) -> WebhookRecord:
            row = conn.execute(
                insert(t.webhooks)
                .values(
                    scope=scope,
                    url=url,
                    event_types=list(event_types),
                    description=description,
                    secret_ciphertext=secret_ciphertext,
                    active=True,
                    created_by=created_by,
                    created_at=utcnow(),
                )
                .returning(*_WEBHOOK_COLUMNS)
            ).one()
            insert_events(conn, events(row.id))
            return _webhook(row)

        return self._store.write(work)

    def get(self, webhook_id: int) -> WebhookRecord | None:
        with self._read() as conn:
            row = conn.execute(select(*_WEBHOOK_COLUMNS).where(w.id == webhook_id)).first()
        return _webhook(row) if row is not None else None

    def secret_ciphertext(self, webhook_id: int) -> str | None:
        with self._read() as conn:
            value = conn.execute(select(w.secret_ciphertext).where(w.id == webhook_id)).scalar()
        return str(value) if value is not None else None

    def find(self, scopes: Sequence[str] | None = None) -> list[WebhookRecord]:
        query = select(*_WEBHOOK_COLUMNS).order_by(w.id)
        if scopes is not None:
            query = query.where(w.scope.in_(list(scopes)))
        with self._read() as conn:
            return [_webhook(row) for row in conn.execute(query)]

    def delete(self, webhook_id: int, *, events: Sequence[Event] = ()) -> bool:
        def work(conn: Connection) -> bool:
            # Explicitly, children first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
            deliveries = select(d.id).where(d.webhook_id == webhook_id)
            conn.execute(delete(t.webhook_attempts).where(a.delivery_id.in_(deliveries)))
            conn.execute(delete(t.webhook_deliveries).where(d.webhook_id == webhook_id))
            gone = conn.execute(delete(t.webhooks).where(w.id == webhook_id).returning(w.id)).first() is not None
            if gone:
                insert_events(conn, events)
            return gone

        return self._store.write(work)

    # -- the outbox consumer ----------------------------------------------------------------

    def cursor(self, consumer: str) -> int:
        with self._read() as conn:
            return read_cursor(conn, consumer)

    def dispatch(self, consumer: str, position: int, deliveries: Sequence[NewDelivery], tries: int) -> int:
        def work(conn: Connection) -> int:
            now = utcnow()
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            added = 0
            for item in deliveries:
                statement = (
                    dialect.insert(t.webhook_deliveries)
                    .values(
                        webhook_id=item.webhook_id,
                        event_id=item.event_id,
                        event_type=item.event_type,
                        resource=item.resource,
                        state="pending",
                        attempts=0,
                        tries_left=tries,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(d.id)
                )
                added += conn.execute(statement).first() is not None
            move_cursor(conn, consumer, position)
            return added

        return self._store.write(work)

    def event(self, event_id: int) -> Event | None:
        e = t.audit_events.c
        query = select(e.event_type, e.payload, e.actor, e.client_ip, e.time).where(e.id == event_id)
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None or row.event_type not in EVENT_TYPES:
            return None
        return event_from_row(row.event_type, row.payload or {}, row.actor, row.client_ip, as_utc(row.time))

    # -- deliveries and their log -------------------------------------------------------------

    def due(self, now: datetime, limit: int, exclude: Sequence[int] = ()) -> list[DeliveryRecord]:
        query = (
            select(t.webhook_deliveries)
            .where(d.state == "pending", d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
        )
        if exclude:
            query = query.where(d.id.not_in(list(exclude)))
        with self._read() as conn:
            return [_delivery(row) for row in conn.execute(query)]

    def record_attempt(self, delivery_id: int, result: AttemptResult, next_attempt_at: datetime | None) -> None:
        def work(conn: Connection) -> None:
            now = utcnow()
            row = conn.execute(select(d.attempts, d.tries_left).where(d.id == delivery_id)).first()
            if row is None:  # deleted with its subscription meanwhile
                return
            attempt = int(row.attempts) + 1
            conn.execute(
                insert(t.webhook_attempts).values(
                    delivery_id=delivery_id,
                    attempt=attempt,
                    time=now,
                    status_code=result.status_code,
                    duration_ms=result.duration_ms,
                    error=result.error,
                )
            )
            state = "succeeded" if result.succeeded else ("pending" if next_attempt_at is not None else "failed")
            conn.execute(
                update(t.webhook_deliveries)
                .where(d.id == delivery_id)
                .values(
                    state=state,
                    attempts=attempt,
                    tries_left=max(int(row.tries_left) - 1, 0),
                    next_attempt_at=next_attempt_at if state == "pending" else None,
                    last_status_code=result.status_code,
                    last_error=result.error,
                    updated_at=now,
                )
            )

        self._store.write(work)

    def deliveries(self, webhook_id: int, limit: int, before_id: int | None) -> list[DeliveryRecord]:
        query = select(t.webhook_deliveries).where(d.webhook_id == webhook_id).order_by(d.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(d.id < before_id)
        with self._read() as conn:
            return [_delivery(row) for row in conn.execute(query)]

    def delivery(self, delivery_id: int) -> DeliveryRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.webhook_deliveries).where(d.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    def attempts(self, delivery_id: int) -> list[AttemptRecord]:
        query = select(a.attempt, a.time, a.status_code, a.duration_ms, a.error).where(a.delivery_id == delivery_id)
        with self._read() as conn:
            return [
                AttemptRecord(r.attempt, as_utc(r.time), r.status_code, float(r.duration_ms), r.error)
                for r in conn.execute(query.order_by(a.attempt, a.id))
            ]

    def redeliver(
        self, delivery_id: int, tries: int, now: datetime, *, events: Sequence[Event] = ()
    ) -> DeliveryRecord | None:
        def work(conn: Connection) -> DeliveryRecord | None:
            conn.execute(
                update(t.webhook_deliveries)
                .where(d.id == delivery_id)
                .values(state="pending", tries_left=tries, next_attempt_at=now, updated_at=now)
            )
            row = conn.execute(select(t.webhook_deliveries).where(d.id == delivery_id)).first()
            if row is None:
                return None
            insert_events(conn, events)
            return _delivery(row)

        return self._store.write(work)

    def pending_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).where(d.state == "pending")).scalar_one())
