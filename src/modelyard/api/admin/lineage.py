"""A version's lineage and the diff of two versions:
``GET /api/v1/repositories/{repository}/-/versions/{reference}/lineage``,
``GET …/-/versions/{reference}/diff/{other}[?repository=OTHER_REPOSITORY]`` and the same as
``GET …/-/versions/{reference}/diff?against=REPO:TAG`` (or ``REPO@DIGEST``, or a bare tag or
digest of the same repository).

Both answer only about what the caller may read: the version itself must be readable (else
404 like a missing one); the lineage leaves out, without a trace, every node in a repository
the caller may not read; a diff needs read access to both versions' repositories.
"""

from __future__ import annotations

import re

from modelyard.api.admin import views
from modelyard.api.admin.framework import Call, Operation, QueryParam, validation_error
from modelyard.domain import lineage as domain
from modelyard.policy.authorizer import Permission
from modelyard.schemas import lineage as schemas


def _ref(key: tuple[str, str]) -> str:
    return f"{key[0]}@{key[1]}"


def _node(node: domain.LineageNode) -> schemas.LineageNode:
    return schemas.LineageNode(
        repository=node.repository,
        digest=node.digest,
        present=node.present,
        media_type=node.media_type,
        artifact_type=node.artifact_type,
        tags=list(node.tags),
        time_created=node.created_at,
        model=views.model_summary(node.model) if node.model is not None else None,
    )


async def get_lineage(call: Call) -> schemas.Lineage:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    readable: dict[str, bool] = {}

    async def visible(repository: str) -> bool:
        if repository not in readable:
            readable[repository] = await call.can(Permission.PULL, "repository", repository)
        return readable[repository]

    found = await call.registry.lineage.lineage(name, call.path("reference"), visible)
    return schemas.Lineage(
        version=_node(found.root),
        ancestors=[_node(n) for n in found.ancestors],
        descendants=[_node(n) for n in found.descendants],
        edges=[
            schemas.LineageEdge(child=_ref(e.child), parent=_ref(e.parent), relation=e.relation) for e in found.edges
        ],
        truncated=found.truncated,
    )


def _entries(items: tuple[tuple[str, int, str], ...]) -> list[schemas.FileEntry]:
    return [schemas.FileEntry(path=path, size=size, digest=digest) for path, size, digest in items]


def _fields(items: tuple[domain.FieldChange, ...]) -> list[schemas.FieldChange]:
    return [schemas.FieldChange(field=c.field, old=c.old, new=c.new) for c in items]


# A reference never holds whitespace; bounded like a repository name plus a digest.
# Printable ASCII without space: what names, tags and digests are made of. Not ``\S``: Python and
# ECMAScript (the OpenAPI document's regex dialect) disagree on whether U+0085 is a space.
AGAINST = r"^[!-~]{1,600}$"


def split_against(value: str, repository: str) -> tuple[str, str]:
    """``acme/llm:v2`` -> (``acme/llm``, ``v2``); ``acme/llm@sha256:…`` -> (…, digest); a bare
    ``v2`` or ``sha256:…`` is a version of ``repository``."""
    if "@" in value:
        name, _, reference = value.partition("@")
        return name or repository, reference
    if value.startswith("sha256:") or ":" not in value.rsplit("/", 1)[-1]:
        return (repository, value) if "/" not in value else (value, "latest")
    name, _, reference = value.rpartition(":")
    return name, reference


async def get_diff(call: Call) -> schemas.VersionDiff:
    name = call.path("repository")
    return await _diff(call, name, call.query_str("repository") or name, call.path("other"))


async def get_diff_against(call: Call) -> schemas.VersionDiff:
    name = call.path("repository")
    against = call.query_str("against")
    if against is None or re.fullmatch(AGAINST, against) is None:
        raise validation_error([("against", "required: the other version, REPO:TAG, REPO@DIGEST, a tag or a digest")])
    other, reference = split_against(against, name)
    return await _diff(call, name, other, reference)


async def _diff(call: Call, name: str, other: str, other_reference: str) -> schemas.VersionDiff:
    await call.require(Permission.PULL, "repository", name)
    await call.require(Permission.PULL, "repository", other)
    diff = await call.registry.diffs.diff(name, call.path("reference"), other, other_reference)
    return schemas.VersionDiff(
        a=schemas.VersionRef(repository=diff.a_repository, digest=diff.a_digest, size=diff.a_size),
        b=schemas.VersionRef(repository=diff.b_repository, digest=diff.b_digest, size=diff.b_size),
        added=_entries(diff.added),
        removed=_entries(diff.removed),
        changed=[
            schemas.FileChange(
                path=c.path, old_size=c.old_size, new_size=c.new_size, old_digest=c.old_digest, new_digest=c.new_digest
            )
            for c in diff.changed
        ],
        unchanged=diff.unchanged,
        metadata=_fields(diff.metadata),
        annotations=_fields(diff.annotations),
        shared_bytes=diff.shared_bytes,
        changed_bytes=diff.changed_bytes,
    )


VERSION = "/api/v1/repositories/{repository:.+}/-/versions/{reference}"
TAG = "models"

OPERATIONS = [
    Operation("GET", VERSION + "/lineage", "getModelLineage",
              "Versions this one derives from and that derive from it, across readable repositories", TAG,
              get_lineage, response=schemas.Lineage, errors=(404,)),
    Operation("GET", VERSION + "/diff/{other}", "diffModelVersions",
              "Files added, removed and changed, metadata changed and bytes shared from this version to another",
              TAG, get_diff, response=schemas.VersionDiff, errors=(404,),
              query=(QueryParam("repository", "string", "The other version's repository (default: this one)."),)),
    Operation("GET", VERSION + "/diff", "diffModelVersionAgainst",
              "The same diff, the other version given as ?against=REPO:TAG, REPO@DIGEST, a tag or a digest", TAG,
              get_diff_against, response=schemas.VersionDiff, errors=(404, 422),
              query=(QueryParam("against", "string", "The other version: REPO:TAG, REPO@DIGEST, a tag or a digest.",
                                pattern=AGAINST, required=True),)),
]  # fmt: skip
