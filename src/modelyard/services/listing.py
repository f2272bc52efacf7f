"""Content discovery: tag lists, the catalog and the referrers API, with pagination.

Tag lists are read far more often than tags change (every pull of a client that resolves
versions lists them), so each process keeps the answers it rendered -- the bytes, ready to
send -- with the repository's tag-list state (``Tags.list_state``: its id and creation time and
the count and highest id of its current tag rows). A request reads that state (one indexed
row) and sends the kept answer if it is unchanged. The state lives in the database, so a tag
pushed, moved or deleted through any worker or replica, or by retention, invalidates every
process's copy on its next request: no TTL, never a stale list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from modelyard.domain import mediatypes
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.metadata.base import MetadataStore

MAX_PAGE = 10_000
MAX_KEPT_NAMES = 100_000  # tag names in all the tag-list pages a process keeps rendered
_FILTER_BATCH = 100

T = TypeVar("T")


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


def filtered_page(
    fetch: Callable[[int, str | None], list[T]],
    limit: int,
    last: str | None,
    visible: Callable[[T], bool],
    key: Callable[[T], str],
) -> tuple[list[T], bool]:
    """Up to ``limit`` items after ``last`` that ``visible`` admits, and whether more follow.

    Reads as many batches as it takes, so that a page ends on an item the caller may see: the
    next page's cursor (``last=`` of a ``Link``, an admin ``next_page``) is that item's name,
    and a cursor naming an item the caller may not see would reveal it.
    """
    batch_size = max(limit + 1, _FILTER_BATCH)
    found: list[T] = []
    cursor = last
    while len(found) <= limit:
        batch = fetch(batch_size, cursor)
        found += [item for item in batch if visible(item)]
        if len(batch) < batch_size:
            break
        cursor = key(batch[-1])
    return found[:limit], len(found) > limit


def _unknown(repository: str) -> RegistryError:
    return RegistryError(ErrorCode.NAME_UNKNOWN, f"repository {repository} does not exist", detail={"name": repository})


class ListingService:
    def __init__(self, metadata: MetadataStore, cached_tag_pages: int = 2048) -> None:
        self._meta = metadata
        self._tag_pages: dict[tuple[str, int | None, str | None], tuple[tuple[Any, ...], object]] = {}
        self._max_pages = cached_tag_pages
        self._kept_names = 0
        self._lock = threading.Lock()  # reads run on the thread pool on PostgreSQL

    def tags(self, repository: str, limit: int | None, last: str | None) -> Page:
        if self._meta.repositories.get(repository) is None:
            raise _unknown(repository)
        return _page(lambda n, after: self._meta.tags.list_names(repository, n, after), limit, last)

    def tags_rendered(self, repository: str, limit: int | None, last: str | None, render: Callable[[Page], T]) -> T:
        """``render`` of a page of tags, kept and reused while the repository's tag-list state is
        unchanged (see the module docstring). The state is read before the tags, so a change
        landing between the two reads leaves an answer kept under an older state: re-read next time."""
        state = self._meta.tags.list_state(repository)
        if state is None:
            raise _unknown(repository)
        key = (repository, limit, last)
        kept = self._tag_pages.get(key)
        if kept is not None and kept[0] == state:
            return cast(T, kept[1])
        page = _page(lambda n, after: self._meta.tags.list_names(repository, n, after), limit, last)
        rendered = render(page)
        with self._lock:
            # Bounded by pages and by names kept (a page may hold 10,000 tags of 128 characters):
            # at most ~100,000 names, a few MiB. Full, it starts over; a miss costs one list read.
            if len(self._tag_pages) >= self._max_pages or self._kept_names + len(page.items) > MAX_KEPT_NAMES:
                self._tag_pages.clear()
                self._kept_names = 0
            self._tag_pages[key] = (state, rendered)
            self._kept_names += len(page.items)
        return rendered

    def catalog(self, limit: int | None, last: str | None, visible: Callable[[str], bool] | None = None) -> Page:
        """A page of repository names; with ``visible``, only those it admits (a page then
        holds ``limit`` of them unless it is the last)."""
        if visible is None:
            return _page(self._meta.repositories.list_names, limit, last)
        if limit == 0:
            return Page([], False)
        size = MAX_PAGE if limit is None else min(limit, MAX_PAGE)
        items, more = filtered_page(self._meta.repositories.list_names, size, last, visible, str)
        return Page(items, more)

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
