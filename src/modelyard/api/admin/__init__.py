"""The admin REST API under ``/api/v1``, described by ``/api/v1/openapi.json``."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from modelyard.api.admin import (
    aliases,
    audit,
    compartments,
    iam,
    models,
    principals,
    proxies,
    replication,
    repositories,
    tensors,
    webhooks,
)
from modelyard.api.admin import lifecycle as retention_and_quotas
from modelyard.api.admin import lineage as version_lineage
from modelyard.api.admin.framework import Operation, add_operations
from modelyard.api.admin.openapi import build_openapi, docs_page

# Order matters: the IAM routes of repositories (``…/-/iam``) and the model routes of versions
# (``…/-/versions/{reference}``) must be tried before the repository route whose name parameter
# spans slashes.
OPERATIONS: list[Operation] = [
    *retention_and_quotas.OPERATIONS,
    *iam.OPERATIONS,
    *aliases.OPERATIONS,
    *tensors.OPERATIONS,
    *version_lineage.OPERATIONS,
    *models.OPERATIONS,
    *compartments.OPERATIONS,
    *repositories.OPERATIONS,
    *principals.OPERATIONS,
    *audit.OPERATIONS,
    *webhooks.OPERATIONS,
    *replication.OPERATIONS,
    *proxies.OPERATIONS,
]


@functools.cache
def openapi_document() -> bytes:
    """Built on first use (generating the schemas takes a noticeable part of a second) and kept:
    the operation table is fixed at import time."""
    return json.dumps(build_openapi(OPERATIONS)).encode()


def add_routes(app: web.Application) -> None:
    add_operations(app, OPERATIONS)

    async def openapi(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=openapi_document(), content_type="application/json")

    async def docs(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=docs_page(OPERATIONS), content_type="text/html")

    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/docs", docs)
