"""Content discovery: ``/v2/``, ``/v2/_catalog``, tag lists and the referrers API."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from modelyard.api.oci.access import claims_of
from modelyard.api.oci.common import next_link, query_limit, registry_of
from modelyard.api.oci.routing import V2Route
from modelyard.domain import mediatypes
from modelyard.domain.digest import Digest
from modelyard.services.listing import Page
from modelyard.services.registry import Registry


def _json(
    payload: object, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> web.Response:
    return web.Response(body=json.dumps(payload).encode(), content_type=content_type, headers=headers)


async def base(request: web.Request, route: V2Route) -> web.StreamResponse:
    """``GET /v2/``: the registry implements the distribution spec."""
    return _json({})


async def tags_list(request: web.Request, route: V2Route) -> web.StreamResponse:
    """A page of tags, served from the bytes rendered for it last time while its repository's
    tags are unchanged (``services/listing.py``)."""
    limit = query_limit(request)
    registry = registry_of(request)

    def render(page: Page) -> tuple[bytes, dict[str, str]]:
        headers = {}
        if page.more and page.items:
            headers["Link"] = next_link(f"/v2/{route.name}/tags/list", limit or len(page.items), page.items[-1])
        return json.dumps({"name": route.name, "tags": page.items}).encode(), headers

    body, headers = await registry.read(
        registry.listing.tags_rendered, route.name, limit, request.query.get("last"), render
    )
    return web.Response(body=body, content_type="application/json", headers=headers)


def _readable_by(registry: Registry, subject: str) -> Callable[[str], bool]:
    principal = registry.identity.principal_for(subject)
    if principal is None:
        return lambda name: False
    return registry.iam.pull_filter(principal)


async def catalog(request: web.Request, route: V2Route) -> web.StreamResponse:
    """The catalog, filtered to what the caller may read. The ``Link`` to the next page names
    the last repository of this one, so it too is one the caller may read."""
    registry = registry_of(request)
    limit = query_limit(request)
    claims = claims_of(request)
    last = request.query.get("last")

    def listing() -> Page:
        visible = None if claims is None else _readable_by(registry, claims.subject)
        return registry.listing.catalog(limit, last, visible)

    page = await registry.read(listing)
    items = page.items
    headers = {}
    if page.more and page.items:
        headers["Link"] = next_link("/v2/_catalog", limit or len(page.items), page.items[-1])
    return _json({"repositories": items}, headers)


async def referrers(request: web.Request, route: V2Route) -> web.StreamResponse:
    subject = Digest.parse(route.argument)
    artifact_type = request.query.get("artifactType") or None
    registry = registry_of(request)
    index = await registry.read(registry.listing.referrers, route.name, str(subject), artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return _json(index, headers, content_type=mediatypes.OCI_INDEX)
