"""The Hugging Face Hub's HTTP API, read half, over the model versions the registry stores: point
``HF_ENDPOINT`` (or ``endpoint=``) at the registry and ``huggingface_hub`` -- with it
``transformers``, vLLM, TGI, sentence-transformers, diffusers -- loads versioned,
access-controlled models from it.

- ``GET /api/models/{repo_id}[/revision/{revision}]``: model info (``sha``, ``siblings``, ...)
- ``GET /api/models/{repo_id}/tree/{revision}[/{path}]``: a tree listing, paginated with a
  ``Link: <…?cursor=…>; rel="next"`` header as the Hub does (:data:`TREE_PAGE` entries a page)
- ``POST /api/models/{repo_id}/paths-info/{revision}``: the entries among some paths;
  ``GET /api/models/{repo_id}/refs``: tags (aliases and versions) and ``main`` as branch
- ``HEAD``/``GET /{repo_id}/resolve/{revision}/{path}``: one file, with the headers the client
  relies on (``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``, ``X-Linked-Size``, ``Content-Length``,
  ``Range``), or a redirect to the blob store when it hands out URLs

``repo_id`` is a repository name of one or two components (the client refuses ids with more
slashes). Callers authenticate with ``Authorization: Bearer`` and a modelyard API key or the
refresh token of ``modelyard login`` (``HF_TOKEN``); errors carry ``X-Error-Code``
(``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), rendered by ``api/errors.py``.
The rules are ``services/hf.py``'s; the wire shapes ``views.py``'s.
"""

from __future__ import annotations

from aiohttp import web

from modelyard.api.admin import files
from modelyard.api.admin.framework import authenticate
from modelyard.api.context import registry_of
from modelyard.api.errors import HttpError
from modelyard.api.hf import views
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.policy.authorizer import Principal

TREE_PAGE = 1000


def _repo_id(request: web.Request) -> str:
    info = request.match_info
    return f"{info['namespace']}/{info['name']}" if "namespace" in info else info["name"]


async def _principal(request: web.Request) -> Principal:
    """The caller; credentials that do not authenticate are refused as the Hub refuses them (the
    client then reports a bad token rather than a missing repository)."""
    try:
        return await authenticate(request, registry_of(request))
    except RegistryError as exc:
        if exc.code is not ErrorCode.UNAUTHORIZED:
            raise
        raise HttpError(
            ErrorCode.UNAUTHORIZED,
            f"{exc.message} (send a modelyard API key or the refresh token of modelyard login as HF_TOKEN)",
            status=401,
            headers={"X-Error-Message": "Invalid credentials in Authorization header"},
        ) from None


async def model_info(request: web.Request) -> web.StreamResponse:
    hub = registry_of(request).hub
    found = await hub.revision(await _principal(request), _repo_id(request), request.match_info.get("revision"))
    return web.json_response(views.model_info(found))


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


async def tree(request: web.Request) -> web.StreamResponse:
    hub = registry_of(request).hub
    path = request.match_info.get("path", "")
    found, entries = await hub.tree(
        await _principal(request),
        _repo_id(request),
        request.match_info["revision"],
        path,
        recursive=_flag(request, "recursive"),
    )
    cursor = request.query.get("cursor", "0")
    start = int(cursor) if cursor.isascii() and cursor.isdigit() and len(cursor) < 10 else 0
    page = entries[start : start + TREE_PAGE]
    response = web.json_response([views.tree_entry(entry) for entry in page], headers={"X-Repo-Commit": found.sha})
    if start + TREE_PAGE < len(entries):
        following = request.url.update_query(cursor=str(start + TREE_PAGE))
        response.headers["Link"] = f'<{following}>; rel="next"'
    return response


async def resolve(request: web.Request) -> web.StreamResponse:
    hub = registry_of(request).hub
    found, file, access = await hub.file(
        await _principal(request), _repo_id(request), request.match_info["revision"], request.match_info["path"]
    )
    headers = views.file_headers(found, file)
    redirect = hub.redirect_url(file)
    if redirect is not None:  # an object store serves the bytes; the metadata rides on the redirect
        return web.Response(status=302, headers={**headers, "Location": redirect, "ETag": f'"{file.etag}"'})
    return await files.respond(
        request, access, registry_of(request).models, entity_tag=file.etag, extra_headers=headers
    )


async def paths_info(request: web.Request) -> web.StreamResponse:
    """``POST …/paths-info/{revision}`` with form fields ``paths`` (repeated) and ``expand``."""
    form = await request.post()
    paths = [str(p) for p in form.getall("paths", [])][:1000]
    hub = registry_of(request).hub
    found, entries = await hub.paths_info(
        await _principal(request), _repo_id(request), request.match_info["revision"], paths
    )
    return web.json_response([views.tree_entry(e) for e in entries], headers={"X-Repo-Commit": found.sha})


async def refs(request: web.Request) -> web.StreamResponse:
    main, tags = await registry_of(request).hub.refs(await _principal(request), _repo_id(request))
    body: dict[str, object] = {
        "branches": [] if main is None else [{"name": "main", "ref": "refs/heads/main", "targetCommit": main}],
        "converts": [],
        "tags": [{"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": commit} for tag, commit in tags],
    }
    if request.query.get("include_prs"):
        body["pullRequests"] = []
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    """Registered after every other route: ``/{namespace}/{name}/resolve/…`` would otherwise
    shadow nothing, but ``/v2/…`` and ``/api/v1/…`` must win any tie."""
    # Refs of a two-component repo id only: for a root repository, /api/models/{name}/refs is the
    # model info of the repository "{name}/refs".
    app.router.add_get("/api/models/{namespace}/{name}/refs", refs)
    for repo in ("{namespace}/{name}", "{name}"):
        app.router.add_get(f"/api/models/{repo}", model_info)
        app.router.add_post(f"/api/models/{repo}/paths-info/{{revision}}", paths_info)
        app.router.add_get(f"/api/models/{repo}/revision/{{revision}}", model_info)
        app.router.add_get(f"/api/models/{repo}/tree/{{revision}}", tree)
        app.router.add_get(f"/api/models/{repo}/tree/{{revision}}/{{path:.+}}", tree)
        app.router.add_get(f"/{repo}/resolve/{{revision}}/{{path:.+}}", resolve)  # HEAD too
