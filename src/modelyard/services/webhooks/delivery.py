"""Delivering webhooks from the event outbox, on the leader only (``workers.py``).

Each tick (``webhook_poll_interval``):

1. **Dispatch** (a thread): read outbox rows after this consumer's cursor, make one delivery
   per (subscription that wants the event, event), and move the cursor, in one transaction.
   Deliveries are unique per subscription and event, so reading a row twice is harmless.
   The cursor only moves over rows it has seen with no gap before them: on PostgreSQL a row id
   is taken at insert and becomes visible at commit, so a lower id may still appear; a gap is
   waited for until the rows after it are :data:`GAP_GRACE` old (then it was a rolled-back
   transaction, or an id that will never be seen). Rows after a gap are still dispatched at
   once. A subscription gets only events from after its creation.
2. **Send** (the event loop): start due deliveries up to ``webhook_concurrency`` in flight,
   each as its own task, and return: a slow endpoint holds one slot for at most
   ``webhook_timeout``, never the tick, and never a push (a push only writes its outbox row).
   A response in 2xx succeeds; anything else (another status, a timeout, a refused connection)
   is retried after ``webhook_retry_base`` x 2^(attempt-1) seconds, at most
   ``webhook_retry_max``, until ``webhook_max_attempts`` tries are spent (then the delivery
   ``failed``; redelivery gives it fresh tries). Every attempt is logged with its status code,
   duration and error. Delivery is at least once: a leader that dies mid-send leaves the
   delivery pending, and the next leader sends it again (same ``webhook-id``, so receivers can
   drop the duplicate).

The body is built at the first attempt from the stored event (and the model index, which the
push writes right after its own transaction), and again on a retry: the same event id, type
and fields; the model facts as they are by then. A pushed manifest that is not indexed yet
waits (no attempt counted) up to :data:`MODEL_WAIT` for its facts, then goes without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from modelyard import metrics
from modelyard.domain.events import Event, ManifestPushed
from modelyard.domain.models import ModelVersionRecord
from modelyard.domain.webhooks import (
    AttemptResult,
    DeliveryRecord,
    NewDelivery,
    SignedMessage,
    backoff_seconds,
    sign,
    type_name,
)
from modelyard.metadata.clock import utcnow
from modelyard.metadata.webhooks import WebhookStore
from modelyard.services.outbox import Outbox, consume
from modelyard.services.runner import BlockingRunner
from modelyard.services.secretbox import SecretBox, SecretBoxError
from modelyard.services.webhooks.cloudevent import build_body, event_digest
from modelyard.services.webhooks.service import SECRET_PURPOSE

log = logging.getLogger("modelyard.webhooks")

CONSUMER = "webhooks"
MODEL_WAIT = timedelta(seconds=5)


class Transport(Protocol):
    """Sends one signed message (``egress/webhooks.py`` over HTTP); never raises for a failed
    send, it says what happened."""

    async def send(self, url: str, message: SignedMessage, timeout: float) -> AttemptResult: ...

    async def close(self) -> None: ...


class ModelLookup(Protocol):
    def summaries(self, repository: str, digests: Sequence[str]) -> dict[str, ModelVersionRecord]: ...


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout: float
    max_attempts: int
    retry_base: float
    retry_max: float
    concurrency: int
    source: str


class WebhookDelivery:
    def __init__(
        self,
        store: WebhookStore,
        outbox: Outbox,
        models: ModelLookup,
        box: SecretBox,
        transport: Transport,
        runner: BlockingRunner,
        policy: DeliveryPolicy,
    ) -> None:
        self._store = store
        self._outbox = outbox
        self._models = models
        self._box = box
        self._transport = transport
        self._run = runner.run
        self.policy = policy
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    # -- 1. dispatch --------------------------------------------------------------------------

    def dispatch(self) -> int:
        """Turn new outbox events into deliveries; how many were made."""

        def mapper() -> Callable[[int, Event], list[NewDelivery]]:
            hooks = [hook for hook in self._store.find() if hook.active]
            return lambda row_id, event: [
                NewDelivery(hook.id, row_id, type_name(type(event)), event.resource)
                for hook in hooks
                if event.time >= hook.created_at and hook.wants(event)
            ]

        def commit(position: int, deliveries: list[NewDelivery]) -> int:
            return self._store.dispatch(CONSUMER, position, deliveries, self.policy.max_attempts)

        return consume(self._outbox, lambda: self._store.cursor(CONSUMER), mapper, commit)

    # -- 2. send ------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Dispatch, then start what is due (without waiting for it)."""
        await self._run(self.dispatch)
        free = self.policy.concurrency - len(self._in_flight)
        if free <= 0:
            return
        due = await self._run(self._store.due, utcnow(), free, list(self._in_flight))
        for delivery in due:
            task = asyncio.create_task(self._attempt(delivery), name=f"webhook-delivery-{delivery.id}")
            self._in_flight[delivery.id] = task
            task.add_done_callback(functools.partial(self._finished, delivery.id))

    def _finished(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery_id, None)

    async def drain(self) -> None:
        """Wait for the deliveries in flight (tests, and a graceful stop)."""
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._in_flight.values()), return_exceptions=True)
        await self._transport.close()

    def _model(self, event: Event) -> ModelVersionRecord | None:
        repository, digest = getattr(event, "repository", None), event_digest(event)
        if not isinstance(repository, str) or digest is None:
            return None
        return self._models.summaries(repository, [digest]).get(digest)

    def _prepare(self, delivery: DeliveryRecord) -> tuple[str, SignedMessage] | str | None:
        """The URL and signed message, why there is none, or ``None``: not yet (try again soon)."""
        hook = self._store.get(delivery.webhook_id)
        sealed = self._store.secret_ciphertext(delivery.webhook_id)
        if hook is None or sealed is None:
            return "the subscription was deleted"
        event = self._store.event(delivery.event_id)
        if event is None:
            return f"event {delivery.event_id} is no longer in the outbox"
        try:
            secret = self._box.open(sealed, SECRET_PURPOSE)
        except SecretBoxError as exc:
            return str(exc)
        model = self._model(event)
        if model is None and isinstance(event, ManifestPushed) and utcnow() - event.time < MODEL_WAIT:
            return None  # the push is still indexing it: its facts belong in the body
        kind, body = build_body(delivery.event_id, event, self.policy.source, model)
        message_id = f"msg_{delivery.event_id}_{delivery.webhook_id}"
        timestamp = int(time.time())
        signature = sign(secret, message_id, timestamp, body)
        message = SignedMessage(message_id, timestamp, body, signature, kind, delivery.id, delivery.attempts + 1)
        return hook.url, message

    async def _attempt(self, delivery: DeliveryRecord) -> None:
        prepared = await self._run(self._prepare, delivery)
        if prepared is None:
            return
        if isinstance(prepared, str):
            result = AttemptResult(None, 0.0, prepared)
            retry_at = None
        else:
            url, message = prepared
            result = await self._transport.send(url, message, self.policy.timeout)
            retry_at = self._retry_at(delivery, result)
        metrics.WEBHOOK_DELIVERIES.labels(outcome="success" if result.succeeded else "failure").inc()
        metrics.WEBHOOK_SECONDS.observe(result.duration_ms / 1000)
        if not result.succeeded:
            log.info(
                "webhook %d delivery %d attempt %d failed: %s",
                delivery.webhook_id, delivery.id, delivery.attempts + 1, result.error or result.status_code,
            )  # fmt: skip
        await self._run(self._store.record_attempt, delivery.id, result, retry_at)

    def _retry_at(self, delivery: DeliveryRecord, result: AttemptResult) -> datetime | None:
        if result.succeeded or delivery.tries_left <= 1:
            return None
        wait = backoff_seconds(delivery.attempts + 1, self.policy.retry_base, self.policy.retry_max)
        return utcnow() + timedelta(seconds=wait)
