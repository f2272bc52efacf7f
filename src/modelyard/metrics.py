"""The registry's Prometheus metrics: one place that declares them, importable by any layer
(services, workers, the API) without HTTP.

Other parts increment what they do: ``metrics.GC_RUNS.labels(outcome="success").inc()``,
``metrics.REPLICATION_BYTES.inc(n)``, ``metrics.RETENTION_DELETED.inc()``... The HTTP side
(``api/metrics.py``) counts requests and serves ``/metrics``.

**Several workers.** ``modelyard serve --workers N`` runs N processes behind one port, and a
scrape lands on any one of them, so each process's counters alone would be a random fraction.
We use prometheus-client's multiprocess mode: before the workers start, the parent makes a
fresh directory for this run and sets ``PROMETHEUS_MULTIPROC_DIR``; every worker then keeps
its values in memory-mapped files there, and whichever worker answers a scrape sums the files
of all (:func:`render`). The directory is per run (a restart starts from zero, as counters
should, rather than adding to a dead run's files) and removed when the server stops. With one
worker the process keeps its values in memory as usual. This is why the metrics are module
globals, unlike the rest of the registry: prometheus-client's values are per process by
design, and a metric declared twice in one process is an error.

Gauges that are a sum over live workers (uploads in progress, workers) use ``livesum``, and
the parent marks a worker's files dead when it exits. Storage-wide gauges (bytes stored, blobs,
upload sessions, pending webhook deliveries) are read from the database at scrape time, so all
workers and replicas report the same truth (see ``api/metrics.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# -- HTTP (api/metrics.py) ---------------------------------------------------------------------
REQUESTS = Counter(
    "modelyard_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "modelyard_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response body, by route template.",
    ["method", "route"],
    buckets=_LATENCY,
)
RECEIVED_BYTES = Counter("modelyard_http_received_bytes", "Request body bytes received, by route template.", ["route"])
SENT_BYTES = Counter("modelyard_http_sent_bytes", "Response body bytes sent, by route template.", ["route"])
UPLOADS_IN_PROGRESS = Gauge(
    "modelyard_uploads_in_progress", "Blob upload requests whose body is being received.", multiprocess_mode="livesum"
)
UPLOAD_DIRECT_BYTES = Counter(
    "modelyard_upload_direct_bytes",
    "Upload body bytes a transfer thread read straight from the socket (large plain-HTTP bodies).",
)
BLOB_SEND_COPIED_BYTES = Counter(
    "modelyard_blob_send_copied_bytes",
    "Blob download bytes a thread copied to the socket (api/oci/direct_send.py); the rest went by sendfile.",
)
WORKERS = Gauge("modelyard_workers", "Serving worker processes.", multiprocess_mode="livesum")

# -- authentication --------------------------------------------------------------------------
LOGIN_FAILURES = Counter("modelyard_login_failures", "Refused logins, by reason (the error code).", ["reason"])
EVENTS = Counter("modelyard_events", "Events recorded in the outbox, by type.", ["type"])

# -- background work (workers.py and the jobs) ---------------------------------------------------
JOB_RUNS = Counter("modelyard_background_job_runs", "Background job runs, by job and outcome.", ["job", "outcome"])
JOB_SECONDS = Histogram(
    "modelyard_background_job_duration_seconds", "Background job run time.", ["job"], buckets=_LATENCY
)
GC_RUNS = Counter("modelyard_gc_runs", "Garbage collections, by outcome (success, error).", ["outcome"])
GC_FREED_BYTES = Counter("modelyard_gc_freed_bytes", "Bytes of blobs and uploads removed by garbage collection.")
RETENTION_RUNS = Counter("modelyard_retention_runs", "Retention policy runs, by outcome.", ["outcome"])
RETENTION_DELETED = Counter("modelyard_retention_deleted_versions", "Versions deleted by retention policies.")
RETENTION_FREED_BYTES = Counter("modelyard_retention_freed_bytes", "Unique bytes freed by retention policies.")
REPLICATION_RUNS = Counter("modelyard_replication_runs", "Replication executions, by outcome.", ["outcome"])
REPLICATION_BYTES = Counter("modelyard_replication_bytes", "Bytes copied by replication.")

# -- pull-through cache (services/proxy/) ------------------------------------------------------
PROXY_REQUESTS = Counter(
    "modelyard_proxy_requests",
    "Pulls in proxied repositories, by kind (manifest, blob) and result (hit, miss, stale, error).",
    ["kind", "result"],
)
PROXY_UPSTREAM_BYTES = Counter("modelyard_proxy_upstream_bytes", "Blob bytes fetched from upstream registries.")

# -- webhooks (services/webhooks/) ---------------------------------------------------------------
WEBHOOK_DELIVERIES = Counter(
    "modelyard_webhook_deliveries", "Webhook delivery attempts, by outcome (success, failure).", ["outcome"]
)
WEBHOOK_SECONDS = Histogram(
    "modelyard_webhook_delivery_duration_seconds", "Time a webhook endpoint took to answer.", buckets=_LATENCY
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every metric: all workers' when several run, plus ``extra``
    collectors (gauges read at scrape time)."""
    directory = multiprocess_dir()
    if directory is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        head = generate_latest(registry)
    else:
        head = generate_latest(REGISTRY)
    extras = CollectorRegistry()
    for collector in extra:
        extras.register(collector)
    return head + generate_latest(extras)


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sum)."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
