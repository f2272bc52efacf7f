"""The audit log: the outbox of domain events read as who did what, when, from where -- never a
secret (``domain/events.py`` tells why they are one table).

Services write their events through the metadata write that makes the change; this service
writes the events that go with no data change (a login, a token issued), reads the log, and
puts one line per event in the server log (:func:`log_events`, after the commit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from modelyard import metrics
from modelyard.domain.events import Event, LoginFailed, audit_action
from modelyard.domain.principals import AuditRecord
from modelyard.metadata.base import MetadataStore
from modelyard.services.runner import BlockingRunner

log = logging.getLogger("modelyard.audit")


def log_events(events: Sequence[Event]) -> None:
    """One server-log line per committed event (the log's formatter escapes control characters),
    and its count in ``modelyard_events`` (failed logins also in ``modelyard_login_failures``)."""
    for event in events:
        metrics.EVENTS.labels(type=type(event).__name__).inc()
        if isinstance(event, LoginFailed):
            metrics.LOGIN_FAILURES.labels(reason=event.reason).inc()
        log.info(
            "%s %s %s %s from %s",
            event.actor.subject, audit_action(event), event.resource, event.outcome, event.actor.client_ip,
        )  # fmt: skip


class AuditService:
    def __init__(self, metadata: MetadataStore, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._run = runner.run

    async def record(self, *events: Event) -> None:
        """Write events that go with no data change, in a transaction of their own."""
        await self._run(self._meta.audit.record, events)
        log_events(events)

    def query(
        self, limit: int, before_id: int | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        return self._meta.audit.query(limit, before_id, actor, action)
