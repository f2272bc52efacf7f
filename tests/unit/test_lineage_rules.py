"""The lineage and diff rules without a registry: how a base annotation names a repository of this
registry (a host and a tag dropped, nonsense refused), and what a diff counts as shared."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelyard.domain.lineage import BASE_DIGEST, BASE_NAME, BaseRef, base_of, repository_path
from modelyard.domain.models import ModelFacts, ModelFile, ModelVersionRecord
from modelyard.services.models.diff import compare

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("reference", "path"),
    [
        ("acme/llm", "acme/llm"),
        ("acme/llm:v1", "acme/llm"),
        ("localhost:5000/acme/llm:v1", "acme/llm"),
        ("registry.example.com/acme/llm@" + DIGEST, "acme/llm"),
        ("docker.io/library/alpine:3.19", "library/alpine"),
        ("llm", "llm"),
        ("Acme/LLM", None),
        ("../etc", None),
        ("", None),
    ],
)
def test_repository_path(reference: str, path: str | None) -> None:
    assert repository_path(reference) == path


def test_base_of() -> None:
    assert base_of("team/ft", {BASE_NAME: "team/base:v1", BASE_DIGEST: DIGEST}) == BaseRef(
        "team/base", DIGEST, "team/base:v1"
    )
    assert base_of("team/ft", {BASE_DIGEST: DIGEST}) == BaseRef("team/ft", DIGEST, None)  # same repository
    assert base_of("team/ft", {BASE_NAME: "team/base"}) is None  # a name without a digest names no version
    assert base_of("team/ft", {BASE_NAME: "team/base", BASE_DIGEST: "latest"}) is None
    assert base_of("team/ft", {BASE_NAME: "NOT A NAME", BASE_DIGEST: DIGEST}) is None
    assert base_of("team/ft", None) is None


def _version(repository: str, files: list[ModelFile], **facts: object) -> ModelVersionRecord:
    now = datetime.now(UTC)
    return ModelVersionRecord(
        id=1, repository=repository, digest="sha256:" + repository[0] * 64, media_type="m", tags=(),
        created_at=now, indexed_at=now, facts=ModelFacts(packaging="modelpack", files=tuple(files), **facts),  # type: ignore[arg-type]
    )  # fmt: skip


def test_compare_counts_each_shared_blob_once() -> None:
    w1 = ModelFile("w.bin", 100, "sha256:" + "1" * 64, "raw", 0)
    w1_moved = ModelFile("weights/w.bin", 100, "sha256:" + "1" * 64, "raw", 0)
    w2 = ModelFile("w.bin", 120, "sha256:" + "2" * 64, "raw", 0)
    card = ModelFile("README.md", 10, "sha256:" + "3" * 64, "raw", 1)
    a = _version("a", [w1, card], license="mit")
    b = _version("b", [w2, w1_moved, card], license="apache-2.0")
    diff = compare(a, b, {"org.opencontainers.image.created": "x", "k": "1"}, {"org.opencontainers.image.created": "y"})
    assert [(c.path, c.old_size, c.new_size) for c in diff.changed] == [("w.bin", 100, 120)]
    assert diff.added == (("weights/w.bin", 100, "sha256:" + "1" * 64),) and diff.removed == ()
    assert diff.unchanged == 1
    assert diff.shared_bytes == 110 and diff.changed_bytes == 120  # the moved file's blob is shared
    assert [(c.field, c.old, c.new) for c in diff.metadata] == [("license", "mit", "apache-2.0")]
    assert [(c.field, c.old, c.new) for c in diff.annotations] == [("k", "1", None)]  # created is ignored
