"""The audit log: the outbox of domain events read as who did what, when, from where -- never a
secret (``domain/events.py`` tells why they are one table).

Services write their events through the metadata write that makes the change; this service
writes the events that go with no data change (a login, a token issued), reads the log, and
puts one line per event in the server log (:func:`log_events`, after the commit).
"""

from __future__ import annotations

import asyncio
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
    """Writes the events of logins and tokens with group commit.

    Each token request records two events (the login and the token). One transaction each --
    with SQLite's ``synchronous=FULL``, one fsync each, serialized across workers -- held token
    requests to a few hundred a second. So events wait in a queue while a write is in flight
    and the next write takes all of them in one transaction. A caller still returns only once
    its events are committed (nothing is recorded later than before, or lost on a crash after
    the answer); a failed write fails every caller whose events it held.
    """

    def __init__(self, metadata: MetadataStore, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._run = runner.run
        self._queue: list[tuple[Sequence[Event], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, *events: Event) -> None:
        """Write events that go with no data change, in a transaction shared with any others
        waiting at the time (see the class docstring)."""
        if not events:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((events, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await asyncio.shield(done)  # a cancelled caller's events are still written
        log_events(events)

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._run(self._meta.audit.record, [event for events, _ in batch for event in events])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            except BaseException:
                for _, done in batch:
                    done.cancel()
                raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def query(
        self, limit: int, before_id: int | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        return self._meta.audit.query(limit, before_id, actor, action)
