"""The model index's contract (``metadata/model_index.py``) on SQLite and PostgreSQL: put is an
idempotent replace that writes nothing for a missing manifest, rows die with their manifest and
repository, search filters and pages newest first, and on PostgreSQL a filtered search uses an
index rather than scanning the table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from modelyard.domain.models import ModelFacts, ModelFile, ModelQuery
from modelyard.domain.records import NewManifest
from modelyard.metadata.sql import SqlMetadataStore
from modelyard.metadata.sql_models import SqlModelIndex
from tests.helpers import OCI_MANIFEST, sha256


def _manifest(store: SqlMetadataStore, repository: str, label: str, tag: str | None = None) -> str:
    content = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "label": label}).encode()
    store.repositories.ensure(repository)
    store.manifests.put(repository, NewManifest(digest=sha256(content), media_type=OCI_MANIFEST, content=content), tag)
    return sha256(content)


def _facts(**values: Any) -> ModelFacts:
    files = values.pop("files", ())
    return ModelFacts(packaging="modelpack", total_size=100, file_count=len(files), files=tuple(files), **values)


FILE = ModelFile("model.safetensors", 10, sha256(b"w"), "application/vnd.cncf.model.weight.v1.raw", 0, "weight")
MEMBER = ModelFile("cfg/config.json", 5, sha256(b"t"), "application/vnd.cncf.model.weight.config.v1.tar", 1,
                   "config", "tar", 1536, 0o644)  # fmt: skip


def test_put_get_replace_and_files(store: SqlMetadataStore) -> None:
    index = SqlModelIndex(store)
    digest = _manifest(store, "acme/llm", "a", "v1")
    facts = _facts(architecture="llama", parameters=7_000_000_000, files=[FILE, MEMBER], details={"k": [1, "x"]})
    assert index.put("acme/llm", digest, facts)
    found = index.get("acme/llm", digest, with_files=True)
    assert found is not None and found.tags == ("v1",) and found.digest == digest
    assert found.facts == facts
    assert index.file("acme/llm", digest, "cfg/config.json") == MEMBER
    assert index.file("acme/llm", digest, "nope") is None
    without = index.get("acme/llm", digest)
    assert without is not None and without.facts.files == ()

    assert index.put("acme/llm", digest, facts)  # idempotent: the same rows
    replaced = _facts(architecture="mistral", status="opaque", reason="why", files=[FILE])
    assert index.put("acme/llm", digest, replaced)
    again = index.get("acme/llm", digest, with_files=True)
    assert again is not None and again.id == found.id and again.facts == replaced

    assert not index.put("acme/llm", sha256(b"missing"), facts)
    assert not index.put("acme/none", digest, facts)
    assert index.summaries("acme/llm", [digest, sha256(b"x")]).keys() == {digest}


def test_rows_die_with_their_manifest_and_repository(store: SqlMetadataStore) -> None:
    index = SqlModelIndex(store)
    first = _manifest(store, "acme/llm", "a")
    second = _manifest(store, "acme/llm", "b")
    for digest in (first, second):
        index.put("acme/llm", digest, _facts(files=[FILE]))
    assert index.unindexed(10) == []
    store.manifests.delete("acme/llm", first)
    assert index.get("acme/llm", first) is None and index.get("acme/llm", second) is not None
    store.repo_admin.delete("acme/llm")
    assert index.get("acme/llm", second) is None
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_files")).scalar_one() == 0


def test_unindexed_lists_manifests_without_rows(store: SqlMetadataStore) -> None:
    index = SqlModelIndex(store)
    first = _manifest(store, "acme/a", "a")
    second = _manifest(store, "acme/b", "b")
    index.put("acme/a", first, _facts())
    assert index.unindexed(10) == [("acme/b", second)]


def test_search_filters_and_pages(store: SqlMetadataStore) -> None:
    index = SqlModelIndex(store)
    llama: dict[str, Any] = {"architecture": "llama", "parameters": 8_000_000_000}
    rows: list[tuple[str, dict[str, Any]]] = [
        ("acme/llama", {**llama, "license": "apache-2.0", "format": "safetensors"}),
        ("acme/llama-q", {**llama, "quantization": "q4_k_m", "quant_bits": 4, "format": "gguf", "license": "llama3"}),
        ("acme/qwen", {"architecture": "qwen2", "parameters": 500_000_000, "quantization": "awq", "quant_bits": 4,
                       "name": "Tiny Qwen"}),
        ("other/img", {"packaging": "image"}),
    ]  # fmt: skip
    for number, (repository, values) in enumerate(rows):
        digest = _manifest(store, repository, str(number), "v1")
        facts = ModelFacts(**{"packaging": "modelpack", "total_size": 1, "file_count": 0, **values})
        index.put(repository, digest, facts)

    def names(**query: Any) -> list[str]:
        return [r.repository for r in index.search(ModelQuery(**query), 100, None)]

    assert names() == ["other/img", "acme/qwen", "acme/llama-q", "acme/llama"]
    assert names(architecture="llama") == ["acme/llama-q", "acme/llama"]
    assert names(quantization="int4", quant_bits=4) == ["acme/qwen", "acme/llama-q"]
    assert names(quantization="awq") == ["acme/qwen"]
    assert names(license="apache-2.0") == ["acme/llama"]
    assert names(format="gguf") == ["acme/llama-q"]
    assert names(min_params=1_000_000_000) == ["acme/llama-q", "acme/llama"]
    assert names(max_params=1_000_000_000) == ["acme/qwen"]
    assert names(text="acme/llama") == ["acme/llama-q", "acme/llama"]
    assert names(text="tiny") == ["acme/qwen"]
    assert names(text="acme/llama%") == []  # LIKE wildcards are literal
    first = index.search(ModelQuery(), 2, None)
    rest = index.search(ModelQuery(), 2, first[-1].id)
    assert [r.repository for r in first + rest] == names()
    assert all(r.tags == ("v1",) for r in first + rest)


@pytest.mark.postgres
def test_filtered_search_uses_an_index_on_postgresql(postgres_url: str) -> None:
    from modelyard.metadata.migrations import upgrade
    from modelyard.metadata.sql import create_metadata_engine

    engine = create_metadata_engine(postgres_url)
    upgrade(engine)
    store = SqlMetadataStore(engine)
    try:
        index = SqlModelIndex(store)
        for number in range(300):
            repository = f"r{number % 30}/m"
            digest = _manifest(store, repository, str(number))
            arch = "llama" if number % 50 == 0 else "other"
            index.put(repository, digest, _facts(architecture=arch, parameters=number, license=f"l{number % 7}"))
        with engine.connect() as conn:
            conn.execute(text("ANALYZE model_versions"))
            conn.execute(text("SET enable_seqscan = off"))  # a plan that still scans has no index to use
            for where in ("architecture = 'llama'", "license = 'l3'", "parameters >= 250", "quant_bits = 4"):
                plan = "\n".join(
                    conn.execute(
                        text(f"EXPLAIN SELECT id FROM model_versions WHERE {where} ORDER BY id DESC LIMIT 50")
                    ).scalars()
                )
                assert "Seq Scan on model_versions" not in plan, (where, plan)
    finally:
        store.close()
