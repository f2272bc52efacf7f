"""Reading pages: home (repositories), model search, a repository, its versions, one version,
and a version's file (downloaded through the admin API's own file handler).

Each page calls the admin API's handler for what it shows (``api/admin/*``) with the
session's :class:`WebCall`, so what a viewer sees and may do is decided on one path.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pydantic
from aiohttp import web

from modelyard.api.admin import lineage as lineage_api
from modelyard.api.admin import models as models_api
from modelyard.api.admin import repositories as repositories_api
from modelyard.api.admin.framework import from_pydantic
from modelyard.domain.digest import Digest
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.records import RepositoryFilter
from modelyard.policy.authorizer import Permission
from modelyard.schemas import admin as schemas
from modelyard.services.listing import filtered_page
from modelyard.web.markdown import render_markdown
from modelyard.web.page import WebCall, form_list, human_bytes, notice_of, repo_url, short_digest, when

HOME_PAGE_SIZE = 50
DOCUMENT_MAX_BYTES = 256 * 1024  # a referrer's document shown inline; larger ones are linked
MAX_REFERRERS_SHOWN = 25
COMPARE_CHOICES = 1000  # tags offered by the version page's "compare with" list
MODEL_FILTERS = ("arch", "quantization", "license", "min_params", "max_params", "format", "q")


async def home(call: WebCall) -> web.StreamResponse:
    """The repositories the viewer may read, filtered by compartment and by text in the name or
    description; pages end on a visible repository (``filtered_page``)."""
    compartment = call.query_str("compartment")
    text = (call.query_str("text") or "").strip().lower()[:200]
    where = RepositoryFilter(compartment=compartment)

    def visible(record: Any) -> bool:
        if text and text not in record.name and text not in record.settings.description.lower():
            return False
        return call.can_now(Permission.PULL, "repository", record.name)  # off the loop: in work()

    def work() -> tuple[list[Any], bool, list[Any]]:
        records, more = filtered_page(
            lambda size, last: call.registry.repositories.search(where, size, last),
            HOME_PAGE_SIZE,
            call.page(),
            visible,
            lambda r: r.name,
        )
        compartments, _ = filtered_page(
            call.registry.compartments.page, 200, None,
            lambda r: call.can_now(Permission.CATALOG, "compartment", r.name), lambda r: r.name,
        )  # fmt: skip
        return records, more, compartments

    records, more, compartments = await call.registry.read(work)  # one hop on PostgreSQL
    return await call.render(
        "home.html",
        repositories=records,
        next_page=records[-1].name if more else None,
        compartments=[c.name for c in compartments],
        compartment=compartment or "",
        text=text,
        notice=notice_of(call),
    )


async def model_search(call: WebCall) -> web.StreamResponse:
    """The admin API's model search (``GET /api/v1/models``) with the same query parameters."""
    asked = {name: call.query_str(name) or "" for name in MODEL_FILTERS}
    error = None
    results = None
    if any(asked.values()) or call.request.query.get("all"):
        try:
            results = await models_api.search_models(call)
        except RegistryError as exc:
            if exc.code is not ErrorCode.VALIDATION_FAILED:
                raise
            error = exc.message
    return await call.render("models.html", asked=asked, results=results, error=error)


def _readme_source(repository: schemas.Repository) -> str:
    return base64.b64decode(repository.readme.content).decode("utf-8", "replace")


def _readme_html(repository: schemas.Repository) -> str:
    text = _readme_source(repository)
    if not text.strip():
        return ""
    if repository.readme.format == "TEXT_PLAIN":
        return render_markdown("```\n" + text.replace("```", "` ` `") + "\n```")
    return render_markdown(text)


def pull_commands(host: str, name: str, tag: str) -> list[tuple[str, str]]:
    ref = f"{host}/{name}:{tag}"
    local = name.rsplit("/", 1)[-1]
    return [
        ("modelyard", f"modelyard pull {ref} ./{local}"),
        ("docker", f"docker pull {ref}"),
        ("podman", f"podman pull {ref}"),
        ("skopeo", f"skopeo copy docker://{ref} oci:./{local}:{tag}"),
        ("oras", f"oras pull {ref}"),
    ]


async def repository(call: WebCall) -> web.StreamResponse:
    name = call.path("repository")
    shown = await repositories_api.get_repository(call)
    versions = await call.registry.read(call.registry.repositories.versions, name, 10, None)
    newest = max(versions, key=lambda v: v.tagged_at, default=None)
    tag = "latest" if any(v.tag == "latest" for v in versions) else (newest.tag if newest else "latest")
    return await call.render(
        "repository.html",
        repo=shown,
        readme=_readme_html(shown),
        readme_source=_readme_source(shown),
        commands=pull_commands(call.host(), name, tag),
        versions=versions,
        can_configure=await call.can(Permission.CONFIGURE, "repository", name),
        can_publish=await call.can(Permission.IAM_WRITE, "repository", name),
        can_iam=await call.can(Permission.IAM_READ, "repository", name),
        notice=notice_of(call),
        tab="overview",
    )


def validated(model: type[pydantic.BaseModel], data: dict[str, Any]) -> Any:
    """A form's values through the admin API's own request model (the same 422 on bad input)."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc) from None


async def update_settings(call: WebCall) -> web.StreamResponse:
    name = call.path("repository")
    data: dict[str, Any] = {
        "description": call.field("description"),
        "is_immutable": call.field("is_immutable") == "on",
        "immutable_tag_patterns": form_list(call.form, "immutable_tag_patterns"),
        "mutable_tag_exclusions": form_list(call.form, "mutable_tag_exclusions"),
        "readme": {"content": base64.b64encode(call.field("readme").encode()).decode(), "format": "TEXT_MARKDOWN"},
    }
    await call.require(Permission.CONFIGURE, "repository", name)  # before reading what it is now
    if call.field("visibility") in ("public", "private"):
        public = call.field("visibility") == "public"
        if public != (await call.registry.read(call.registry.repositories.get, name)).settings.is_public:
            data["is_public"] = public  # changing it needs iam.write too (the API's check)
    call.body = validated(schemas.RepositoryUpdate, data)
    await repositories_api.update_repository(call)
    return call.redirect(repo_url(name), "Settings saved.")


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One row of the versions table, every cell computed here: a template's function calls
    cost microseconds each, and a page of 1,000 versions has ten thousand cells."""

    tag: str
    href: str
    immutable: bool
    aliases: tuple[str, ...]
    format: str
    architecture: str
    parameters: str
    quantization: str
    size: str
    pushed: str
    digest: str
    short_digest: str


def version_rows(name: str, items: list[Any], aliases: dict[str, list[str]]) -> list[VersionRow]:
    rows = []
    base = repo_url(name, "versions") + "/"  # a tag is [A-Za-z0-9_.-]: nothing in it to quote
    for v in items:
        m = v.model
        rows.append(VersionRow(
            tag=v.tag, href=base + v.tag, immutable=v.immutable,
            aliases=tuple(a for a in aliases.get(v.digest, ()) if a != v.tag),
            format=(m.format or m.packaging) if m else "", architecture=(m.architecture or "") if m else "",
            parameters=(m.parameters_human or "") if m else "",
            quantization=(m.quantization or m.precision or "") if m else "",
            size=human_bytes(m.total_size if m and m.total_size else v.size), pushed=when(v.time_tagged),
            digest=v.digest, short_digest=short_digest(v.digest),
        ))  # fmt: skip
    return rows


async def versions(call: WebCall) -> web.StreamResponse:
    name = call.path("repository")
    page = await repositories_api.list_versions(call)
    shown = await repositories_api.get_repository(call)
    # Aliases (mutable tags) of this page as badges of the versions they point at. The alias
    # service's full list would cover other pages too, but it reads every tag of the repository.
    aliases: dict[str, list[str]] = {}
    for item in page.items:
        if not item.immutable:
            aliases.setdefault(item.digest, []).append(item.tag)
    return await call.render(
        "versions.html", repo=shown, rows=version_rows(name, page.items, aliases), next_page=page.next_page,
        tab="versions", name=name, limit=call.limit(),
    )  # fmt: skip


def _document(raw: bytes, media_type: str, title: str) -> tuple[str, str]:
    """How a referrer's document is shown: ``("markdown", html)``, ``("json", text)`` or ``("", "")``."""
    lowered = (media_type + " " + title).lower()
    text = raw.decode("utf-8", "replace")
    if "markdown" in lowered or title.lower().endswith((".md", ".markdown")):
        return "markdown", render_markdown(text)
    if "json" in lowered:
        try:
            return "json", json.dumps(json.loads(text), indent=2, sort_keys=True)
        except ValueError:
            return "text", text
    if media_type.startswith("text/"):
        return "text", text
    return "", ""


async def _referrers(call: WebCall, name: str, digest: str) -> list[dict[str, Any]]:
    index = await call.registry.read(call.registry.listing.referrers, name, digest, None)
    shown = []
    for descriptor in index["manifests"][:MAX_REFERRERS_SHOWN]:
        entry: dict[str, Any] = {
            "digest": descriptor["digest"],
            "artifact_type": descriptor.get("artifactType") or descriptor["mediaType"],
            "annotations": descriptor.get("annotations") or {},
            "kind": "",
            "content": "",
            "truncated": False,
        }
        try:
            record = await call.registry.read(call.registry.manifests.get, name, descriptor["digest"])
            manifest = json.loads(record.content)
            layers = manifest.get("layers") or []
            layer = layers[0] if layers and isinstance(layers[0], dict) else None
            if layer is not None:
                title = str((layer.get("annotations") or {}).get("org.opencontainers.image.title", ""))
                raw, size = await call.registry.blobs.read_head(
                    name, Digest.parse(str(layer.get("digest"))), DOCUMENT_MAX_BYTES
                )
                entry["title"] = title
                entry["kind"], entry["content"] = _document(raw, str(layer.get("mediaType", "")), title)
                entry["truncated"] = size > DOCUMENT_MAX_BYTES
        except (RegistryError, ValueError, TypeError):
            pass  # shown by type and annotations only
        shown.append(entry)
    return shown


async def version(call: WebCall) -> web.StreamResponse:
    name = call.path("repository")
    model = await models_api.get_version(call)
    manifest = await call.registry.read(call.registry.manifests.get, name, model.digest)
    try:
        manifest_json: Any = json.loads(manifest.content)
    except ValueError:
        manifest_json = None
    config = None
    descriptor = manifest_json.get("config") if isinstance(manifest_json, dict) else None
    if isinstance(descriptor, dict) and "json" in str(descriptor.get("mediaType", "")):
        try:
            raw, size = await call.registry.blobs.read_head(
                name, Digest.parse(str(descriptor.get("digest"))), DOCUMENT_MAX_BYTES
            )
            config = json.dumps(json.loads(raw), indent=2, sort_keys=True) if size <= DOCUMENT_MAX_BYTES else None
        except (RegistryError, ValueError):
            config = None
    shown = await repositories_api.get_repository(call)
    lineage = await lineage_api.get_lineage(call)
    names = await call.registry.read(call.registry.listing.tags, name, COMPARE_CHOICES, None)
    return await call.render(
        "version.html",
        lineage=lineage,
        others=[tag for tag in names.items if tag not in model.tags],
        repo=shown,
        model=model,
        card=render_markdown(model.card) if model.card else "",
        manifest=json.dumps(manifest_json, indent=2) if manifest_json is not None else "",
        config=config,
        referrers=await _referrers(call, name, model.digest),
        reference=call.path("reference"),
        tab="versions",
    )


async def download(call: WebCall) -> web.StreamResponse:
    """The admin API's file endpoint (``GET …/-/versions/{reference}/files/{path}``), served to
    the session: same checks, ``Range`` and ``ETag``."""
    return await models_api.get_file(call)


async def diff_form(call: WebCall) -> web.StreamResponse:
    """The version page's "compare with" form (a GET): on to the diff's own address."""
    other = call.query_str("other")
    here = repo_url(call.path("repository"), "versions", call.path("reference"))
    if other is None:
        return call.redirect(here)
    return call.redirect(f"{here}/diff/{quote(other, safe='')}")


async def diff(call: WebCall) -> web.StreamResponse:
    """The admin API's diff of two versions (``GET …/-/versions/{a}/diff/{b}``)."""
    shown = await repositories_api.get_repository(call)
    result = await lineage_api.get_diff(call)
    return await call.render(
        "diff.html", repo=shown, diff=result, a=call.path("reference"), b=call.path("other"), tab="versions"
    )


async def no_such_page(call: WebCall) -> web.StreamResponse:
    """Any other address under ``/ui``: a page saying so, not the API's JSON."""
    raise RegistryError(ErrorCode.NOT_FOUND, "There is no such page.")
