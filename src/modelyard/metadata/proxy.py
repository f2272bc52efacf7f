"""The protocol of pull-through cache storage: rules and the revalidation times of cached tags
(records in ``domain/proxy.py``; the SQL implementation is ``sql_proxy.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from modelyard.domain.events import Event
from modelyard.domain.proxy import ProxyRule


class ProxyStore(Protocol):
    def create(
        self,
        prefix: str,
        upstream_url: str,
        upstream_prefix: str,
        username: str | None,
        secret_ciphertext: str | None,
        tls_verify: bool,
        tag_ttl_seconds: int,
        created_by: str | None,
        *,
        events: Sequence[Event] = (),
    ) -> ProxyRule:
        """Insert a rule (``events`` in the same transaction); ``AlreadyExistsError`` if its
        prefix has one."""

    def all_rules(self) -> list[ProxyRule]: ...

    def secret_ciphertext(self, rule_id: int) -> str | None: ...

    def delete(self, prefix: str, *, events: Sequence[Event] = ()) -> bool: ...

    def tag_checked(self, repository: str, tag: str) -> tuple[str, datetime] | None:
        """The digest a cached tag had upstream and when that was checked; ``None``: never
        fetched through the cache (a tag pushed here)."""

    def record_tag(self, repository: str, tag: str, digest: str, checked_at: datetime) -> None: ...

    def manifests_using(self, repository: str, blob: str) -> list[str]:
        """The digests of the repository's manifests that list ``blob`` (config or layer)."""
