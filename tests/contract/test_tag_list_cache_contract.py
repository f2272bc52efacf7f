"""Kept tag lists (``services/listing.py``, ``Tags.list_state``), on SQLite and PostgreSQL: a
rendered page is reused while the repository's tags are unchanged, and every change -- made
through another store on the same database, as another worker or replica would -- is seen on the
very next request: a new tag, a deletion, a deletion and a new tag at once (same count), the
manifest's deletion, the repository deleted and created again under its name."""

from __future__ import annotations

import pytest

from modelyard.domain.aliases import TagChange
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.metadata.sql import SqlMetadataStore, create_metadata_engine
from modelyard.services import listing as listing_module
from modelyard.services.listing import ListingService, Page
from tests.contract.test_metadata_contract import manifest

REPO = "acme/llm"


def test_a_kept_tag_list_follows_every_change_made_elsewhere(database_url: str, store: SqlMetadataStore) -> None:
    other = SqlMetadataStore(create_metadata_engine(database_url))  # another worker or replica
    listing = ListingService(store)
    renders: list[list[str]] = []

    def render(page: Page) -> tuple[list[str], bool]:
        renders.append(page.items)
        return page.items, page.more

    def tags(limit: int | None = None, last: str | None = None) -> tuple[list[str], bool]:
        return listing.tags_rendered(REPO, limit, last, render)

    try:
        one, two = manifest("one"), manifest("two")
        store.manifests.put(REPO, one, "a")
        assert tags() == (["a"], False)
        assert tags() == (["a"], False) and len(renders) == 1  # kept: not read nor rendered again

        other.manifests.put(REPO, two, "b")
        assert tags() == (["a", "b"], False)
        assert tags(1) == (["a"], True) and tags(1, "a") == (["b"], False)  # pages kept apart
        other.manifests.put(REPO, two, "a")  # a move: the same names
        assert tags() == (["a", "b"], False)
        renders.clear()
        assert tags() == (["a", "b"], False) and not renders

        assert other.tags.delete(REPO, "b", change=TagChange("delete"))
        assert tags() == (["a"], False)
        # One tag deleted and another made: the same count of current tags.
        assert other.tags.delete(REPO, "a", change=TagChange("delete"))
        other.manifests.put(REPO, one, "c")
        assert tags() == (["c"], False)

        other.manifests.put(REPO, two, "d")
        assert other.manifests.delete(REPO, two.digest)  # takes tag d with it
        assert tags() == (["c"], False)

        # The repository deleted and made again with a tag of the same count.
        assert other.repo_admin.delete(REPO)
        with pytest.raises(RegistryError) as unknown:
            tags()
        assert unknown.value.code is ErrorCode.NAME_UNKNOWN
        other.manifests.put(REPO, one, "e")
        assert tags() == (["e"], False)
    finally:
        other.close()


def test_the_state_is_none_for_an_unknown_repository_and_counts_current_tags(store: SqlMetadataStore) -> None:
    assert store.tags.list_state("nobody/here") is None
    store.manifests.put(REPO, manifest("one"), "a")
    store.manifests.put(REPO, manifest("one"), "b")
    first = store.tags.list_state(REPO)
    assert first is not None and first[2] == 2
    assert store.tags.list_state(REPO) == first


def test_kept_pages_are_bounded_by_the_names_they_hold(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing_module, "MAX_KEPT_NAMES", 2)
    listing = ListingService(store)
    for tag in ("a", "b", "c"):
        store.manifests.put(REPO, manifest("one"), tag)
    renders: list[list[str]] = []

    def render(rendered: Page) -> list[str]:
        renders.append(rendered.items)
        return rendered.items

    def page(last: str | None) -> list[str]:
        return listing.tags_rendered(REPO, 1, last, render)

    assert [page(None), page("a")] == [["a"], ["b"]]
    assert page(None) == ["a"] and len(renders) == 2  # both kept: two names
    assert page("b") == ["c"]  # a third name: the kept pages are dropped first
    assert page(None) == ["a"] and len(renders) == 4  # rendered again
