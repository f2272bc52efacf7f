"""The protocol of webhook storage: subscriptions, deliveries, the delivery log and outbox
cursors (records in ``domain/webhooks.py``; the SQL implementation is ``sql_webhooks.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from modelyard.domain.events import Event
from modelyard.domain.webhooks import AttemptRecord, AttemptResult, DeliveryRecord, NewDelivery, WebhookRecord


class WebhookStore(Protocol):
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
        """Insert a subscription; ``events(id)`` are written in the same transaction."""

    def get(self, webhook_id: int) -> WebhookRecord | None: ...

    def secret_ciphertext(self, webhook_id: int) -> str | None: ...

    def find(self, scopes: Sequence[str] | None = None) -> list[WebhookRecord]:
        """Subscriptions on any of ``scopes`` (``None``: all), by id."""

    def delete(self, webhook_id: int, *, events: Sequence[Event] = ()) -> bool:
        """Delete it with its deliveries and their log; events only when something was deleted."""

    def cursor(self, consumer: str) -> int:
        """The last outbox row id ``consumer`` has handled (0 for a new consumer)."""

    def dispatch(self, consumer: str, position: int, deliveries: Sequence[NewDelivery], tries: int) -> int:
        """In one transaction: insert ``deliveries`` (each at most once per subscription and
        event, so re-reading the outbox is harmless) due now with ``tries`` tries, and move the
        consumer's cursor to ``position``. Returns how many were new."""

    def event(self, event_id: int) -> Event | None:
        """The outbox event of row ``event_id``."""

    def due(self, now: datetime, limit: int, exclude: Sequence[int] = ()) -> list[DeliveryRecord]:
        """Pending deliveries whose next attempt is due, oldest first."""

    def record_attempt(self, delivery_id: int, result: AttemptResult, next_attempt_at: datetime | None) -> None:
        """Log one attempt and update the delivery: succeeded, pending again at
        ``next_attempt_at``, or failed when that is ``None`` and the attempt did not succeed."""

    def deliveries(self, webhook_id: int, limit: int, before_id: int | None) -> list[DeliveryRecord]:
        """A subscription's deliveries, newest first, with ids below ``before_id``."""

    def delivery(self, delivery_id: int) -> DeliveryRecord | None: ...

    def attempts(self, delivery_id: int) -> list[AttemptRecord]: ...

    def redeliver(
        self, delivery_id: int, tries: int, now: datetime, *, events: Sequence[Event] = ()
    ) -> DeliveryRecord | None:
        """Make a delivery pending again, due ``now``, with ``tries`` more tries (and write ``events``)."""

    def pending_count(self) -> int: ...
