"""The webhook outbox consumer on SQLite and PostgreSQL: deliveries made once per subscription
and event however often the outbox is read, a persisted cursor that never skips a row that a
slower transaction may still commit (a gap holds it until filled or old), subscriptions only
getting events from after their creation, and the delivery state machine with its log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from modelyard.domain.events import Actor, Event, ManifestPushed, TagDeleted
from modelyard.domain.webhooks import AttemptResult
from modelyard.egress.webhooks import HttpxTransport
from modelyard.metadata import tables as t
from modelyard.metadata.outbox import event_row
from modelyard.metadata.sql import SqlMetadataStore
from modelyard.metadata.sql_models import SqlModelIndex
from modelyard.metadata.sql_webhooks import SqlWebhooks
from modelyard.services.outbox import GAP_GRACE
from modelyard.services.runner import BlockingRunner
from modelyard.services.secretbox import SecretBox
from modelyard.services.webhooks import DeliveryPolicy, WebhookDelivery
from modelyard.services.webhooks.delivery import CONSUMER

ALICE = Actor("user:alice", "10.0.0.7")
DIGEST = "sha256:" + "a" * 64


def pushed(repository: str, tag: str, at: datetime | None = None) -> ManifestPushed:
    values = {"time": at} if at is not None else {}
    return ManifestPushed(
        actor=ALICE, repository=repository, reference=tag, digest=DIGEST, media_type="x", tag=tag, **values
    )


def engine_for(store: SqlMetadataStore) -> tuple[SqlWebhooks, WebhookDelivery]:
    hooks = SqlWebhooks(store)
    policy = DeliveryPolicy(timeout=1, max_attempts=3, retry_base=1, retry_max=10, concurrency=2, source="test")
    delivery = WebhookDelivery(
        hooks, store.audit, SqlModelIndex(store), SecretBox(b"k" * 32), HttpxTransport(1), BlockingRunner(2), policy
    )
    return hooks, delivery


def subscribe(hooks: SqlWebhooks, scope: str, types: list[str]) -> int:
    return hooks.create(scope, "http://127.0.0.1:9/", types, "", "sealed", "user:alice").id


def insert_with_id(store: SqlMetadataStore, row_id: int, event: Event) -> None:
    with store.engine.begin() as conn:
        conn.execute(insert(t.audit_events).values(id=row_id, **event_row(event)))


def made(store: SqlMetadataStore) -> list[tuple[int, int]]:
    d = t.webhook_deliveries.c
    with store.reader.connect() as conn:
        return [(r.webhook_id, r.event_id) for r in conn.execute(select(d.webhook_id, d.event_id).order_by(d.id))]


def test_one_delivery_per_wanting_subscription_and_event_and_the_cursor_moves(store: SqlMetadataStore) -> None:
    hooks, delivery = engine_for(store)
    registry_pushes = subscribe(hooks, "registry", ["manifest.pushed"])
    acme_all = subscribe(hooks, "repository:acme/llm", ["*"])
    other = subscribe(hooks, "compartment:other", ["*"])
    store.audit.record([pushed("acme/llm", "v1"), TagDeleted(actor=ALICE, repository="acme/llm", tag="v1")])
    store.audit.record([pushed("zeta/x", "v1")])
    ids = [row_id for row_id, _ in store.audit.after(0, 10)]

    assert delivery.dispatch() == 4
    assert sorted(made(store)) == sorted(
        [(registry_pushes, ids[0]), (registry_pushes, ids[2]), (acme_all, ids[0]), (acme_all, ids[1])]
    )
    assert other not in {hook for hook, _ in made(store)}
    assert hooks.cursor(CONSUMER) == ids[-1]
    assert delivery.dispatch() == 0, "nothing new: nothing made twice"

    late = subscribe(hooks, "registry", ["*"])
    store.audit.record([pushed("other/y", "v2")])
    assert delivery.dispatch() == 3  # registry pushes, the compartment, the late subscriber: the new event only
    assert {event for hook, event in made(store) if hook == late} == {hooks.cursor(CONSUMER)}


def test_a_gap_holds_the_cursor_until_it_fills_or_grows_old(store: SqlMetadataStore) -> None:
    hooks, delivery = engine_for(store)
    hook = subscribe(hooks, "registry", ["manifest.pushed"])
    insert_with_id(store, 101, pushed("acme/llm", "a"))
    insert_with_id(store, 103, pushed("acme/llm", "c"))  # 102: a transaction not committed yet
    hooks.dispatch(CONSUMER, 100, [], 3)  # the consumer started at 100
    assert delivery.dispatch() == 2, "what is there is delivered at once"
    assert hooks.cursor(CONSUMER) == 101, "but the cursor waits before the gap"

    insert_with_id(store, 102, pushed("acme/llm", "b"))  # the slow transaction commits
    assert delivery.dispatch() == 1
    assert hooks.cursor(CONSUMER) == 103
    assert sorted(event for _, event in made(store)) == [101, 102, 103]

    old = datetime.now(UTC) - GAP_GRACE - timedelta(seconds=5)
    insert_with_id(store, 105, pushed("acme/llm", "e", at=old))  # 104 never comes (rolled back)
    assert delivery.dispatch() == 0, "an event from before the subscription is not delivered to it"
    assert hooks.cursor(CONSUMER) == 105, "a gap behind rows older than the grace is given up"
    assert {h for h, _ in made(store)} == {hook}


def test_delivery_states_attempts_redelivery_and_deletion(store: SqlMetadataStore) -> None:
    hooks, delivery = engine_for(store)
    hook = subscribe(hooks, "registry", ["*"])
    store.audit.record([pushed("acme/llm", "v1")])
    delivery.dispatch()
    now = datetime.now(UTC)
    (due,) = hooks.due(now, 10)
    assert (due.state, due.attempts, due.tries_left) == ("pending", 0, 3)
    assert hooks.due(now, 10, exclude=[due.id]) == []

    later = now + timedelta(seconds=30)
    hooks.record_attempt(due.id, AttemptResult(500, 12.5, "endpoint answered 500"), later)
    assert hooks.due(now, 10) == [] and len(hooks.due(later, 10)) == 1
    hooks.record_attempt(due.id, AttemptResult(None, 1000.0, "no answer within 1 s"), None)
    failed = hooks.delivery(due.id)
    assert failed is not None and (failed.state, failed.attempts, failed.tries_left) == ("failed", 2, 1)
    assert [(a.attempt, a.status_code, a.error) for a in hooks.attempts(due.id)] == [
        (1, 500, "endpoint answered 500"), (2, None, "no answer within 1 s"),
    ]  # fmt: skip

    again = hooks.redeliver(due.id, 3, now)
    assert again is not None and (again.state, again.tries_left) == ("pending", 3)
    hooks.record_attempt(due.id, AttemptResult(204, 3.0), None)
    done = hooks.delivery(due.id)
    assert done is not None and (done.state, done.attempts, done.last_status_code) == ("succeeded", 3, 204)
    assert hooks.redeliver(999_999, 3, now) is None

    assert hooks.delete(hook) is True and hooks.delete(hook) is False
    assert hooks.delivery(due.id) is None and hooks.attempts(due.id) == []


def test_the_secret_is_stored_sealed(store: SqlMetadataStore) -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal("whsec_c2VjcmV0", "webhook-secret")
    hooks = SqlWebhooks(store)
    hook = hooks.create("registry", "http://127.0.0.1:9/", ["*"], "", sealed, None)
    with store.reader.connect() as conn:
        row = conn.execute(select(t.webhooks)).one()
    assert "whsec_" not in json.dumps([str(v) for v in row])
    assert box.open(hooks.secret_ciphertext(hook.id) or "", "webhook-secret") == "whsec_c2VjcmV0"
