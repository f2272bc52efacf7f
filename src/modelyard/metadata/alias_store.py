"""What ``services/aliases.py`` needs of the metadata store (``sql_aliases.py`` implements it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from modelyard.domain.aliases import AliasRules, CurrentTag, HistoryEntry, TagChange
from modelyard.domain.events import Event


class AliasStore(Protocol):
    """What ``services/aliases.py`` needs of the metadata store."""

    def current(self, repository: str) -> list[CurrentTag]: ...

    def history(
        self, repository: str, tag: str, *, at: datetime | None, limit: int, before_id: int | None
    ) -> list[HistoryEntry]: ...

    def targets(self, repository: str, tag: str) -> list[HistoryEntry]:
        """Every entry of the tag's history that pointed it somewhere, newest first."""

    def move(
        self,
        repository: str,
        tag: str,
        digest: str,
        *,
        expected: str | None,
        change: TagChange,
        events: Callable[[str | None], Sequence[Event]],
    ) -> str | None: ...

    def delete(
        self, repository: str, tag: str, *, expected: str | None, change: TagChange, events: Sequence[Event]
    ) -> bool: ...

    def rules(self, repository: str) -> AliasRules: ...

    def referrer_types(self, repository: str, digest: str) -> set[str]: ...

    def ever_pointed(self, repository: str, tag: str, digest: str) -> bool: ...

    def present(self, repository: str, digests: Sequence[str]) -> set[str]: ...
