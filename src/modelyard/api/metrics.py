"""Operations endpoints and the request metrics middleware.

- ``/metrics``: Prometheus text format, every worker's counters summed (``metrics.py`` tells
  how), plus gauges read from the database at scrape time (bytes and blobs stored, upload
  sessions, pending webhook deliveries), which all workers and replicas agree on.
- ``/healthz``: the process answers (liveness: restart it if not).
- ``/readyz``: the database and the blob store answer (readiness: send it traffic); otherwise
  503 with the reasons.

Requests are labelled by route *template* (``/v2/{name}/blobs/{digest}``), never by path, so a
label's values stay few however many repositories and digests there are.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from modelyard import metrics
from modelyard.api.context import registry_of
from modelyard.api.errors import HttpError
from modelyard.api.oci.ranges import BlobFileResponse
from modelyard.api.oci.routing import Endpoint, parse_v2_path
from modelyard.domain.errors import RegistryError
from modelyard.domain.operations import StorageStats

M = TypeVar("M", bound=MetricWrapperBase)

V2_TEMPLATES = {
    Endpoint.BASE: "/v2/",
    Endpoint.CATALOG: "/v2/_catalog",
    Endpoint.TAGS: "/v2/{name}/tags/list",
    Endpoint.MANIFEST: "/v2/{name}/manifests/{reference}",
    Endpoint.BLOB: "/v2/{name}/blobs/{digest}",
    Endpoint.UPLOAD_START: "/v2/{name}/blobs/uploads/",
    Endpoint.UPLOAD: "/v2/{name}/blobs/uploads/{uuid}",
    Endpoint.REFERRERS: "/v2/{name}/referrers/{digest}",
}
UPLOAD_ENDPOINTS = {"/v2/{name}/blobs/uploads/", "/v2/{name}/blobs/uploads/{uuid}"}
UNMATCHED = "unmatched"


def route_template(request: web.Request) -> str:
    path = request.path
    if path == "/v2" or path.startswith("/v2/"):
        try:
            return V2_TEMPLATES[parse_v2_path(path).endpoint]
        except (HttpError, RegistryError):
            return "/v2/{invalid}"
    info = request.match_info
    route = getattr(info, "route", None)
    resource = route.resource if route is not None else None
    if resource is None or getattr(info, "http_exception", None) is not None:
        return UNMATCHED
    return str(resource.canonical).replace(":.+}", "}")


# A metric's child per label values, found once: ``labels()`` checks and locks on every call,
# ~4 % of a manifest GET. Bounded (methods are the client's to choose).
@functools.lru_cache(maxsize=4096)
def _child(metric: M, *values: str) -> M:
    return metric.labels(*values)


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count and time every request, including the sending of its body.

    The response is prepared and finished here (aiohttp would otherwise do it after the
    middleware returns), so the duration covers the whole transfer and the bytes sent are known.
    That needs an idempotent ``prepare``, as every response has but aiohttp's ``FileResponse``
    (``BlobFileResponse`` made its own so): static files are left to aiohttp.
    """
    start = time.monotonic()
    template = route_template(request)
    uploading = template in UPLOAD_ENDPOINTS and request.method in ("PATCH", "PUT", "POST")
    if uploading:
        metrics.UPLOADS_IN_PROGRESS.inc()
    status = "499"  # the client went away before an answer
    sent = 0
    try:
        response = await handler(request)
        status = str(response.status)
        if isinstance(response, web.FileResponse) and not isinstance(response, BlobFileResponse):
            # aiohttp's FileResponse.prepare is not idempotent (aiohttp prepares again after the
            # middleware): static files go out unprepared here, timed to the handler's return.
            return response
        try:
            if not response.prepared:
                await response.prepare(request)
            await response.write_eof()
        except ConnectionError:  # the client left while the answer went out: aiohttp's own way,
            status = "499"  # quietly (it tries again after the middleware, fails, and moves on)
            return response
        sent = response.body_length
        if request.method != "HEAD" and (response.content_length or 0) > sent:
            sent = response.content_length or 0  # sendfile: written past the counted buffer, whole by now
        return response
    except web.HTTPException as exc:  # raised rather than returned (e.g. aiohttp's own 404/405)
        status = str(exc.status)
        raise
    finally:
        if uploading:
            metrics.UPLOADS_IN_PROGRESS.dec()
        _child(metrics.REQUESTS, request.method, template, status).inc()
        _child(metrics.REQUEST_SECONDS, request.method, template).observe(time.monotonic() - start)
        received = request.content.total_bytes if request.body_exists else 0
        if received:
            _child(metrics.RECEIVED_BYTES, template).inc(received)
        if sent:
            _child(metrics.SENT_BYTES, template).inc(sent)


class StorageCollector(Collector):
    """The scrape-time gauges, from numbers already read from the database."""

    def __init__(self, stats: StorageStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self._stats
        yield GaugeMetricFamily("modelyard_storage_bytes", "Bytes of blobs stored (each blob once).", s.blob_bytes)
        yield GaugeMetricFamily("modelyard_storage_blobs", "Blobs stored.", s.blobs)
        yield GaugeMetricFamily("modelyard_upload_sessions", "Upload sessions open (not committed).", s.upload_sessions)
        yield GaugeMetricFamily(
            "modelyard_webhook_deliveries_pending", "Webhook deliveries waiting for a (first or next) try.",
            s.webhook_deliveries_pending,
        )  # fmt: skip


async def get_metrics(request: web.Request) -> web.StreamResponse:
    registry = registry_of(request)
    stats = await registry.read(registry.health.storage)
    body = await asyncio.to_thread(metrics.render, [StorageCollector(stats)])
    response = web.Response(body=body)
    response.content_type = "text/plain"
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    return response


async def healthz(_request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    problems = await registry_of(request).health.problems()
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ok"})


def add_routes(app: web.Application, *, with_metrics: bool) -> None:
    if with_metrics:
        app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
