"""The append-only audit log: who did what, when, from where -- never a secret."""

from __future__ import annotations

import logging
from typing import Any

from modelyard.domain.principals import AuditRecord
from modelyard.metadata.base import MetadataStore
from modelyard.services.runner import BlockingRunner

log = logging.getLogger("modelyard.audit")
_SECRET_KEYS = ("password", "secret", "token", "key")


def _scrub(detail: Any) -> Any:
    """Drop anything that looks like a credential, however a caller passed it."""
    if isinstance(detail, dict):
        return {k: _scrub(v) for k, v in detail.items() if not any(s in k.lower() for s in _SECRET_KEYS)}
    if isinstance(detail, list):
        return [_scrub(v) for v in detail]
    return detail


class AuditService:
    def __init__(self, metadata: MetadataStore, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._run = runner.run

    async def record(
        self, actor: str, action: str, resource: str, client_ip: str, *, outcome: str = "success", detail: Any = None
    ) -> None:
        await self._run(self._meta.audit.append, actor, action, resource, outcome, client_ip, _scrub(detail))
        log.info("%s %s %s %s from %s", actor, action, resource, outcome, client_ip)

    def query(
        self, limit: int, before_id: int | None = None, actor: str | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        return self._meta.audit.query(limit, before_id, actor, action)
