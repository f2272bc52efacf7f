"""Lifecycle of stored content: retention, quotas and usage, last-pulled times, recorded gc runs.

Mounted beside the core services (one :class:`Lifecycle` on the registry) rather than inside
them: the push path only calls :meth:`QuotaService.check`, the pull path only
:meth:`PullRecorder.record`.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.services.lifecycle.maintenance import MaintenanceService
from modelyard.services.lifecycle.pulls import PullRecorder
from modelyard.services.lifecycle.quotas import QuotaService, UsageReport
from modelyard.services.lifecycle.retention import RetentionPlan, RetentionResult, RetentionService

__all__ = [
    "Lifecycle", "MaintenanceService", "PullRecorder", "QuotaService", "RetentionPlan", "RetentionResult",
    "RetentionService", "UsageReport",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Lifecycle:
    retention: RetentionService
    quotas: QuotaService
    pulls: PullRecorder
    maintenance: MaintenanceService
