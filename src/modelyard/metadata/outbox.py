"""Writing events into the outbox (the ``audit_events`` table) inside a caller's transaction.

Every metadata write that makes an auditable change takes ``events`` and calls
:func:`insert_events` on its own connection once the change is made, so the events commit or
roll back with it (``domain/events.py`` explains the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.domain.events import Event, audit_action, scrub
from modelyard.metadata import tables as t
from modelyard.metadata.clock import utcnow


def event_row(event: Event) -> dict[str, Any]:
    return {
        "time": event.time,
        "actor": event.actor.subject,
        "action": audit_action(event),
        "resource": event.resource,
        "outcome": event.outcome,
        "client_ip": event.actor.client_ip,
        "detail": scrub(event.detail()),
        "event_type": type(event).__name__,
        "payload": scrub(event.payload()),
    }


def insert_events(conn: Connection, events: Sequence[Event]) -> None:
    """Insert ``events`` in the transaction of ``conn`` (nothing for none)."""
    if events:
        conn.execute(insert(t.audit_events), [event_row(e) for e in events])


def read_cursor(conn: Connection, consumer: str) -> int:
    """The last outbox row id ``consumer`` (webhooks, replication) has handled; 0 for a new one."""
    c = t.outbox_cursors.c
    value = conn.execute(select(c.position).where(c.consumer == consumer)).scalar()
    return int(value) if value is not None else 0


def move_cursor(conn: Connection, consumer: str, position: int) -> None:
    """Set ``consumer``'s position, in the transaction that wrote what it made of the events."""
    now = utcnow()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(t.outbox_cursors).values(consumer=consumer, position=position, updated_at=now)
    moved = {"position": position, "updated_at": now}
    conn.execute(upsert.on_conflict_do_update(index_elements=[t.outbox_cursors.c.consumer], set_=moved))
