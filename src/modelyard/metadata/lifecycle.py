"""What retention, quotas, usage, last-pulled times and maintenance runs ask of the metadata
store (``services/lifecycle/``); implemented by ``sql_lifecycle.py`` and ``sql_usage.py``.

A protocol of its own beside ``base.py``'s, built next to the store in ``bootstrap.py``: the
lifecycle features mount on the core rather than growing its protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from modelyard.domain.events import Event
from modelyard.domain.lifecycle import MaintenanceRun, Quota, RetentionPolicy, Scope, StoredVersion, TagSpan, Usage


class LifecycleStore(Protocol):
    # -- retention policies and quotas (one per repository or compartment) ------------------

    def get_policy(self, scope: Scope) -> RetentionPolicy | None: ...

    def set_policy(self, scope: Scope, policy: RetentionPolicy, *, events: Sequence[Event] = ()) -> RetentionPolicy:
        """Create or replace; :class:`~modelyard.domain.lifecycle.OwnerMissingError` if the owner is missing."""

    def delete_policy(self, scope: Scope, *, events: Sequence[Event] = ()) -> bool: ...

    def policy_scopes(self) -> list[Scope]:
        """Every scope that has a retention policy."""

    def get_quota(self, scope: Scope) -> Quota | None: ...

    def set_quota(self, scope: Scope, quota: Quota, *, events: Sequence[Event] = ()) -> Quota: ...

    def delete_quota(self, scope: Scope, *, events: Sequence[Event] = ()) -> bool: ...

    def quotas_for(self, repository: str, compartment: str | None) -> dict[Scope, int]:
        """The quotas that bind a push to ``repository`` (its own and its compartment's), in one read."""

    # -- usage (``sql_usage.py`` explains the counting) --------------------------------------

    def charged_bytes(self, scope: Scope) -> int: ...

    def repository_usage(self, compartment: str | None = None) -> list[Usage]:
        """Every repository (of ``compartment`` when given; ``""``: the root compartment)."""

    def compartment_usage(self, compartment: str | None = None) -> list[Usage]: ...

    def blob_is_stored(self, digest: str) -> bool: ...

    # -- retention -----------------------------------------------------------------------------

    def repositories_in(self, compartment: str) -> list[str]: ...

    def versions(self, repository: str) -> list[StoredVersion]:
        """Every manifest of the repository with its children, blobs and current tags."""

    def tag_spans(self, repository: str, since: datetime) -> list[TagSpan]:
        """Lifetimes of the repository's tags that are current or ended at or after ``since``."""

    def blob_sizes(self, digests: Sequence[str]) -> dict[str, int]: ...

    def still_referenced(self, digests: Sequence[str], excluding: Sequence[int] = ()) -> set[str]:
        """Those of ``digests`` that a manifest (other than the ids in ``excluding``) refers to."""

    def delete_versions(
        self,
        repository: str,
        expected: Sequence[tuple[str, tuple[str, ...]]],
        events: Callable[[str, tuple[str, ...]], Sequence[Event]],
    ) -> list[str]:
        """Delete the manifests ``expected`` names (in that order, parents first), each only if
        its current tags are still the ones listed (else it changed since the plan and stays),
        ending their tags with history ``how="retention"``; in one transaction. Returns the
        digests deleted."""

    # -- last-pulled times ---------------------------------------------------------------------

    def record_pulls(self, pulls: Sequence[tuple[str, str, datetime]]) -> None:
        """Set ``last_pulled_at`` of each (repository, digest) to the time, if later, in one transaction."""

    # -- maintenance runs ----------------------------------------------------------------------

    def record_run(self, run: MaintenanceRun, *, events: Sequence[Event] = ()) -> MaintenanceRun: ...

    def runs(self, kind: str | None, limit: int, before_id: int | None) -> list[MaintenanceRun]: ...
