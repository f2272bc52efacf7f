"""Where request handlers find the registry's services: one typed key on the application."""

from __future__ import annotations

from aiohttp import web

from modelyard.services.registry import Registry

REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)


def registry_of(request: web.Request) -> Registry:
    return request.app[REGISTRY]
