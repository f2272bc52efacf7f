"""Writing events into the outbox (the ``audit_events`` table) inside a caller's transaction.

Every metadata write that makes an auditable change takes ``events`` and calls
:func:`insert_events` on its own connection once the change is made, so the events commit or
roll back with it (``domain/events.py`` explains the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from modelyard.domain.events import Event, audit_action, scrub
from modelyard.metadata import tables as t


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
