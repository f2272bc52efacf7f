"""``/api/v1/repositories``: create, list, show, update, delete, and a repository's versions.

Repository names contain ``/``, so the path parameter spans several segments; the versions
sub-resource sits behind ``/-/`` (as GitLab does), which no repository name can contain.
"""

from __future__ import annotations

from typing import Any

from modelyard.api.admin import views
from modelyard.api.admin.framework import LIMIT, PAGE, Call, Operation, QueryParam
from modelyard.domain.aliases import PromotionGate, ProtectedAlias
from modelyard.domain.models import ModelVersionRecord
from modelyard.domain.records import RepositoryFilter, RepositoryRecord, RepositorySettings, VersionRecord
from modelyard.policy.authorizer import Permission
from modelyard.policy.immutability import tag_is_immutable
from modelyard.schemas import admin as schemas
from modelyard.services.listing import filtered_page


async def create_repository(call: Call) -> schemas.Repository:
    body: schemas.RepositoryCreate = call.body
    settings = RepositorySettings(
        description=body.description,
        is_public=body.is_public,
        is_immutable=body.is_immutable,
        immutable_tag_patterns=tuple(body.immutable_tag_patterns),
        mutable_tag_exclusions=tuple(body.mutable_tag_exclusions),
        readme_content=body.readme.text() if body.readme else "",
        readme_format=body.readme.format if body.readme else "TEXT_MARKDOWN",
        labels=dict(body.labels),
        protected_aliases=tuple(
            ProtectedAlias(r.alias, tuple(r.roles), tuple(r.members)) for r in body.protected_aliases
        ),
        promotion_gates=tuple(
            PromotionGate(g.alias, tuple(g.required_referrer_types), g.require_alias_first)
            for g in body.promotion_gates
        ),
    )
    await call.require(Permission.CREATE, "compartment", body.compartment_id)
    if body.is_public:
        await call.require(Permission.IAM_WRITE, "compartment", body.compartment_id)
    created_by = call.principal.subject if call.auth_enabled else None
    record = await call.registry.repositories.create(
        body.compartment_id, body.display_name, settings, created_by=created_by, actor=call.actor
    )
    return views.repository(record, call.host())


async def list_repositories(call: Call) -> schemas.RepositoryPage:
    limit = call.limit()
    where = RepositoryFilter(
        compartment=call.query_str("compartment_id"),
        is_public=call.query_bool("is_public"),
        name_prefix=call.query_str("name_prefix"),
    )
    records, more = await call.registry.read(
        filtered_page,
        lambda size, last: call.registry.repositories.search(where, size, last),
        limit,
        call.page(),
        lambda r: call.can_now(Permission.PULL, "repository", r.name),  # off the loop with the page's reads
        lambda r: r.name,
    )
    host = call.host()
    items = [views.repository(r, host) for r in records]
    return schemas.RepositoryPage(items=items, next_page=records[-1].name if more else None)


async def get_repository(call: Call) -> schemas.Repository:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    return views.repository(await call.registry.read(call.registry.repositories.get, name), call.host())


async def update_repository(call: Call) -> schemas.Repository:
    body: schemas.RepositoryUpdate = call.body
    await call.require(Permission.CONFIGURE, "repository", call.path("repository"))
    if body.is_public is not None:
        await call.require(Permission.IAM_WRITE, "repository", call.path("repository"))
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"readme"})
    if body.readme is not None:
        changes["readme_content"] = body.readme.text()
        changes["readme_format"] = body.readme.format
    record = await call.registry.repositories.update(call.path("repository"), changes, actor=call.actor)
    return views.repository(record, call.host())


async def delete_repository(call: Call) -> None:
    name = call.path("repository")
    await call.require(Permission.CONFIGURE, "repository", name)
    await call.registry.repositories.delete(name, actor=call.actor)  # its IAM policy goes in the same transaction


async def list_versions(call: Call) -> schemas.VersionPage:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    limit = call.limit()
    service = call.registry.repositories
    page = call.page()

    def read() -> tuple[list[VersionRecord], RepositoryRecord | None, dict[str, ModelVersionRecord]]:
        records = service.versions(name, limit + 1, page)
        return records, service.policy(name), call.registry.models.summaries(name, [r.digest for r in records[:limit]])

    records, policy, models = await call.registry.read(read)
    items = [
        views.version(r, policy is not None and tag_is_immutable(policy, r.tag), models.get(r.digest))
        for r in records[:limit]
    ]
    return schemas.VersionPage(items=items, next_page=items[-1].tag if len(records) > limit else None)


BASE = "/api/v1/repositories"
ONE = BASE + "/{repository:.+}"
TAG = "repositories"
FILTERS = (
    QueryParam("compartment_id", "string", "Only repositories of this compartment."),
    QueryParam("is_public", "boolean", "Only public (true) or private (false) repositories."),
    QueryParam("name_prefix", "string", "Only repositories whose full name starts with this."),
)

OPERATIONS = [
    Operation("GET", BASE, "listRepositories", "List repositories", TAG, list_repositories,
              response=schemas.RepositoryPage, query=(*FILTERS, LIMIT, PAGE), errors=(422,)),
    Operation("POST", BASE, "createRepository", "Create a repository", TAG, create_repository,
              body=schemas.RepositoryCreate, response=schemas.Repository, status=201, errors=(404, 409, 422)),
    Operation("GET", ONE + "/-/versions", "listVersions", "List a repository's versions (tags)", TAG, list_versions,
              response=schemas.VersionPage, query=(LIMIT, PAGE)),
    Operation("GET", ONE, "getRepository", "Get a repository", TAG, get_repository,
              response=schemas.Repository, errors=(404,)),
    Operation("PATCH", ONE, "updateRepository", "Update a repository's settings", TAG, update_repository,
              body=schemas.RepositoryUpdate, response=schemas.Repository),
    Operation("DELETE", ONE, "deleteRepository", "Delete a repository, its tags and manifests", TAG,
              delete_repository, status=204, errors=(404,)),
]  # fmt: skip
