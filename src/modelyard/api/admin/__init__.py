"""The admin REST API under ``/api/v1``, described by ``/api/v1/openapi.json``."""

from __future__ import annotations

import json

from aiohttp import web

from modelyard.api.admin import compartments, repositories
from modelyard.api.admin.framework import Operation, add_operations
from modelyard.api.admin.openapi import build_openapi, docs_page

OPERATIONS: list[Operation] = [*compartments.OPERATIONS, *repositories.OPERATIONS]


def add_routes(app: web.Application) -> None:
    add_operations(app, OPERATIONS)
    document = json.dumps(build_openapi(OPERATIONS)).encode()
    page = docs_page(OPERATIONS)

    async def openapi(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=document, content_type="application/json")

    async def docs(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_get("/api/v1/docs", docs)
