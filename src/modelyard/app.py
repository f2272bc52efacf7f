"""``create_app(settings)``: HTTP on top of the registry that ``bootstrap.build_registry`` wires.

There are no module-level singletons: everything a request needs hangs off the
``web.Application`` built here, so tests build as many independent registries as they like.
The background workers (``workers.py``) start and stop with the application.
"""

from __future__ import annotations

from aiohttp import web

from modelyard import metrics
from modelyard import web as web_ui
from modelyard.api import admin, auth, hf, oci
from modelyard.api import metrics as ops
from modelyard.api.context import REGISTRY
from modelyard.api.errors import error_middleware
from modelyard.api.forwarded import forwarded_middlewares
from modelyard.api.metrics import metrics_middleware
from modelyard.bootstrap import build_registry
from modelyard.config import Settings
from modelyard.workers import BackgroundWorkers

WORKERS: web.AppKey[BackgroundWorkers] = web.AppKey("workers", BackgroundWorkers)

# How much of a streamed request body aiohttp buffers before it stops reading the socket (it
# pauses at twice this). Bodies with a Content-Length mostly bypass it (api/oci/direct_body.py);
# for chunked ones (skopeo, docker) 1 MiB cost ~1.7 MiB more per upload in flight than 256 KiB,
# for no speed (bench/README.md, "Fourth pass").
READ_BUFFER_BYTES = 256 * 1024
# Only admin JSON bodies are read whole; /v2 bodies stream and never hit this limit.
ADMIN_BODY_MAX_BYTES = 4 * 1024 * 1024


def create_app(settings: Settings, *, migrate: bool = True) -> web.Application:
    runtime = build_registry(settings, migrate=migrate)
    registry = runtime.registry
    app = web.Application(
        middlewares=[*forwarded_middlewares(settings.trusted_proxies), metrics_middleware, error_middleware],
        handler_args={"read_bufsize": READ_BUFFER_BYTES},
        client_max_size=ADMIN_BODY_MAX_BYTES,
    )
    app[REGISTRY] = registry
    workers = BackgroundWorkers.for_runtime(runtime)
    app[WORKERS] = workers
    oci.add_routes(app)
    admin.add_routes(app)
    auth.add_routes(app)
    hf.add_routes(app)  # last: its /{namespace}/{name}/resolve/... must not shadow another route
    ops.add_routes(app, with_metrics=settings.metrics_enabled)
    web_ui.add_routes(app)

    async def start(_app: web.Application) -> None:
        if settings.auth_enabled:
            await registry.identity.bootstrap_admin()
        if settings.background_jobs:
            workers.start()
        registry.lifecycle.pulls.start()  # every process writes its own last-pulled times
        metrics.WORKERS.inc()

    app.on_startup.append(start)

    async def close(_app: web.Application) -> None:
        metrics.WORKERS.dec()
        await workers.stop()
        await registry.lifecycle.pulls.stop()
        await registry.proxy.close()  # its downloads and upstream connections
        runtime.close()

    app.on_cleanup.append(close)
    return app
