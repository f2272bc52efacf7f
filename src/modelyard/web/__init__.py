"""The web UI under ``/ui``: server-rendered pages (Jinja2) over the admin API's handlers.

Templates and static files ship inside the package (``pyproject.toml`` package-data); nothing
is fetched from elsewhere at run time. ``/`` leads to ``/ui/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC = Path(__file__).parent / "static"
REPO = "/ui/r/{repository:.+}"
VERSION = REPO + "/-/versions/{reference}"


# (method, path, module, page): every page, as ``modelyard.web.<module>.<page>``.
PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("GET", "/ui/", "browse", "home"),
    ("GET", "/ui/models", "browse", "model_search"),
    ("GET", "/ui/login", "signin", "login_form"),
    ("POST", "/ui/login", "signin", "login"),
    ("POST", "/ui/logout", "signin", "logout"),
    ("GET", "/ui/audit", "admin", "audit"),
    ("GET", "/ui/admin", "admin", "admin"),
    ("POST", "/ui/admin/configuration", "admin", "configure"),
    ("POST", "/ui/admin/compartments", "admin", "create_compartment"),
    ("GET", "/ui/access", "access", "policy_page"),
    ("POST", "/ui/access", "access", "change_policy"),
    ("GET", "/ui/access/compartments/{compartment_id}", "access", "policy_page"),
    ("POST", "/ui/access/compartments/{compartment_id}", "access", "change_policy"),
    ("POST", "/ui/access/users", "access", "create_user"),
    ("POST", "/ui/access/service-accounts", "access", "create_service_account"),
    ("POST", "/ui/access/service-accounts/{account}/keys", "access", "create_key"),
    ("POST", "/ui/access/groups", "access", "create_group"),
    ("POST", "/ui/access/groups/{group}/members", "access", "set_group_members"),
    # Sub-pages of a repository first: its name spans slashes, and "/-/" ends it.
    ("GET", VERSION + "/files/{path:.+}", "browse", "download"),
    ("GET", VERSION + "/diff/{other}", "browse", "diff"),
    ("GET", VERSION + "/diff", "browse", "diff_form"),
    ("GET", VERSION, "browse", "version"),
    ("GET", REPO + "/-/versions", "browse", "versions"),
    ("GET", REPO + "/-/aliases", "aliases", "aliases"),
    ("POST", REPO + "/-/aliases/{alias}/rollback", "aliases", "rollback"),
    ("POST", REPO + "/-/aliases/{alias}/move", "aliases", "move"),
    ("GET", REPO + "/-/access", "access", "policy_page"),
    ("POST", REPO + "/-/access", "access", "change_policy"),
    ("POST", REPO + "/-/settings", "browse", "update_settings"),
    ("GET", REPO, "browse", "repository"),
    ("*", "/ui/{anything:.*}", "browse", "no_such_page"),
)  # fmt: skip


def _page(module: str, name: str) -> Handler:
    """The page ``modelyard.web.<module>.<name>``, imported on its first request.

    The UI's modules bring Jinja2, markdown-it and nh3 (~5 MiB per worker); a worker that only
    serves ``/v2`` (most of them, behind a load balancer) never loads them.
    """
    served: Handler | None = None

    async def serve(request: web.Request) -> web.StreamResponse:
        nonlocal served
        if served is None:
            from modelyard.web.page import PageHandler, page

            handler = cast(PageHandler, getattr(importlib.import_module(f"modelyard.web.{module}"), name))
            served = page(handler)
        return await served(request)

    return serve


def add_routes(app: web.Application) -> None:
    async def to_ui(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    router = app.router
    router.add_get("/", to_ui)
    router.add_get("/ui", to_ui)
    router.add_static("/ui/static", STATIC, append_version=False)
    for method, path, module, name in PAGES:
        if method == "GET":
            router.add_get(path, _page(module, name))  # and HEAD, as aiohttp does for a GET
        else:
            router.add_route(method, path, _page(module, name))
