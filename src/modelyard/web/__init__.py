"""The web UI under ``/ui``: server-rendered pages (Jinja2) over the admin API's handlers.

Templates and static files ship inside the package (``pyproject.toml`` package-data); nothing
is fetched from elsewhere at run time. ``/`` leads to ``/ui/``.
"""

from __future__ import annotations

from aiohttp import web

from modelyard.web import access, admin, aliases, browse, signin
from modelyard.web.page import HERE, TEMPLATES, environment, page

REPO = "/ui/r/{repository:.+}"
VERSION = REPO + "/-/versions/{reference}"


def add_routes(app: web.Application) -> None:
    app[TEMPLATES] = environment()

    async def to_ui(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    router = app.router
    router.add_get("/", to_ui)
    router.add_get("/ui", to_ui)
    router.add_static("/ui/static", HERE / "static", append_version=False)
    router.add_get("/ui/", page(browse.home))
    router.add_get("/ui/models", page(browse.model_search))
    router.add_get("/ui/login", page(signin.login_form))
    router.add_post("/ui/login", page(signin.login))
    router.add_post("/ui/logout", page(signin.logout))
    router.add_get("/ui/audit", page(admin.audit))
    router.add_get("/ui/admin", page(admin.admin))
    router.add_post("/ui/admin/configuration", page(admin.configure))
    router.add_post("/ui/admin/compartments", page(admin.create_compartment))
    router.add_get("/ui/access", page(access.policy_page))
    router.add_post("/ui/access", page(access.change_policy))
    router.add_get("/ui/access/compartments/{compartment_id}", page(access.policy_page))
    router.add_post("/ui/access/compartments/{compartment_id}", page(access.change_policy))
    router.add_post("/ui/access/users", page(access.create_user))
    router.add_post("/ui/access/service-accounts", page(access.create_service_account))
    router.add_post("/ui/access/service-accounts/{account}/keys", page(access.create_key))
    router.add_post("/ui/access/groups", page(access.create_group))
    router.add_post("/ui/access/groups/{group}/members", page(access.set_group_members))
    # Sub-pages of a repository first: its name spans slashes, and "/-/" ends it.
    router.add_get(VERSION + "/files/{path:.+}", page(browse.download))
    router.add_get(VERSION + "/diff/{other}", page(browse.diff))
    router.add_get(VERSION + "/diff", page(browse.diff_form))
    router.add_get(VERSION, page(browse.version))
    router.add_get(REPO + "/-/versions", page(browse.versions))
    router.add_get(REPO + "/-/aliases", page(aliases.aliases))
    router.add_post(REPO + "/-/aliases/{alias}/rollback", page(aliases.rollback))
    router.add_post(REPO + "/-/aliases/{alias}/move", page(aliases.move))
    router.add_get(REPO + "/-/access", page(access.policy_page))
    router.add_post(REPO + "/-/access", page(access.change_policy))
    router.add_post(REPO + "/-/settings", page(browse.update_settings))
    router.add_get(REPO, page(browse.repository))
    router.add_route("*", "/ui/{anything:.*}", page(browse.no_such_page))
