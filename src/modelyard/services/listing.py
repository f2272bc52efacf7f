"""Content discovery: tag lists, the catalog and the referrers API, with pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.domain import mediatypes
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.metadata.base import MetadataStore

MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Page:
    """One page of names; ``more`` says whether a next page exists (for the ``Link`` header)."""

    items: list[str]
    more: bool


def _page(fetch: Any, limit: int | None, last: str | None) -> Page:
    """Fetch one page, asking for one extra item to learn whether there is more."""
    if limit == 0:
        return Page([], False)
    size = MAX_PAGE if limit is None else min(limit, MAX_PAGE)
    items = fetch(size + 1, last)
    return Page(items[:size], len(items) > size)


class ListingService:
    def __init__(self, metadata: MetadataStore) -> None:
        self._meta = metadata

    def tags(self, repository: str, limit: int | None, last: str | None) -> Page:
        if self._meta.repositories.get(repository) is None:
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN, f"repository {repository} does not exist", detail={"name": repository}
            )
        return _page(lambda n, after: self._meta.tags.list_names(repository, n, after), limit, last)

    def catalog(self, limit: int | None, last: str | None) -> Page:
        return _page(self._meta.repositories.list_names, limit, last)

    def referrers(self, repository: str, subject: str, artifact_type: str | None) -> dict[str, Any]:
        """The image index the referrers API answers (empty for an unknown subject)."""
        descriptors = []
        for record in self._meta.manifests.referrers(repository, subject, artifact_type):
            descriptor: dict[str, Any] = {
                "mediaType": record.media_type,
                "digest": record.digest,
                "size": record.size,
            }
            if record.artifact_type:
                descriptor["artifactType"] = record.artifact_type
            if record.annotations:
                descriptor["annotations"] = record.annotations
            descriptors.append(descriptor)
        return {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
