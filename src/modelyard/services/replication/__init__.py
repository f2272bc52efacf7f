"""Push replication (issue #15): targets and rules (``service.py``), the copy plan
(``engine.py``) and the leader's on-push and scheduled job (``worker.py``)."""

from modelyard.services.replication.engine import Replicator
from modelyard.services.replication.service import ReplicationService
from modelyard.services.replication.worker import ReplicationWorker, RetryPolicy

__all__ = ["ReplicationService", "ReplicationWorker", "Replicator", "RetryPolicy"]
