"""Reading the event outbox from a consumer's cursor (webhook delivery, replication): one loop,
so the rule about gaps in row ids is written once.

The cursor only moves over rows seen with no gap before them: on PostgreSQL a row id is taken
at insert and becomes visible at commit, so a lower id may still appear. A gap is waited for
until the rows after it are :data:`GAP_GRACE` old (then it was a rolled-back transaction, or an
id that will never be seen). Rows after a gap are still handled at once; what a consumer makes
of a row must be unique per row (a delivery, a task), so reading it again is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Protocol, TypeVar

from modelyard.domain.events import Event
from modelyard.metadata.clock import utcnow

T = TypeVar("T")
BATCH = 500
MAX_BATCHES = 20
GAP_GRACE = timedelta(seconds=30)


class Outbox(Protocol):
    """The outbox read of ``metadata.audit`` (``AuditLog.after``)."""

    def after(self, last_id: int, limit: int) -> list[tuple[int, Event]]: ...


def consume(
    outbox: Outbox,
    cursor: Callable[[], int],
    mapper: Callable[[], Callable[[int, Event], Iterable[T]]],
    commit: Callable[[int, list[T]], int],
) -> int:
    """Read batches after ``cursor()``; ``mapper()`` (called once per batch, e.g. to read the
    subscriptions) gives what each row makes; ``commit(position, items)`` stores the items and
    moves the cursor in one transaction and says how many were new. Returns the sum."""
    made = 0
    for _ in range(MAX_BATCHES):
        position = cursor()
        rows = outbox.after(position, BATCH)
        if not rows:
            break
        items_of = mapper()
        items: list[T] = []
        advance, contiguous = position, True
        old = utcnow() - GAP_GRACE
        for row_id, event in rows:
            items += items_of(row_id, event)
            contiguous = contiguous and (row_id == advance + 1 or event.time < old)
            if contiguous:
                advance = row_id
        made += commit(advance, items)
        if advance == position or len(rows) < BATCH:
            break
    return made
