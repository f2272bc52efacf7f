"""The tensor index (``model_tensors``, ``ModelIndex.tensors``) on SQLite and PostgreSQL: put
stores each safetensors file's tensors in file order with 64-bit offsets and shapes, a replace
drops the old rows, one tensor is found by name, and rows die with their manifest."""

from __future__ import annotations

import json

from sqlalchemy import text

from modelyard.domain.models import ModelFacts, ModelFile, TensorEntry
from modelyard.domain.records import NewManifest
from modelyard.metadata.sql import SqlMetadataStore
from modelyard.metadata.sql_models import SqlModelIndex
from tests.helpers import OCI_MANIFEST, sha256

BIG = 2**40  # past 32 bits: a 70 GB shard's offsets
A = (
    TensorEntry("model.embed_tokens.weight", "BF16", (128256, 4096), 1000, 1000 + 128256 * 4096 * 2),
    TensorEntry("lm_head.weight", "F8_E4M3", (4096,), BIG, BIG + 4096),
    TensorEntry("scale", "F32", (), BIG + 4096, BIG + 4100),
)
B = (TensorEntry("x", "I8", (0, 3), 80, 80),)
FILES = (
    ModelFile("model-00001.safetensors", BIG + 4100, sha256(b"a"), "application/vnd.cncf.model.weight.v1.raw", 0),
    ModelFile("b.safetensors", 80, sha256(b"b"), "application/vnd.cncf.model.weight.v1.raw", 1),
)


def _manifest(store: SqlMetadataStore, repository: str, label: str) -> str:
    content = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "label": label}).encode()
    store.repositories.ensure(repository)
    store.manifests.put(repository, NewManifest(digest=sha256(content), media_type=OCI_MANIFEST, content=content), "v1")
    return sha256(content)


def test_tensors_put_read_replace_and_cascade(store: SqlMetadataStore) -> None:
    index = SqlModelIndex(store)
    digest = _manifest(store, "acme/llm", "a")
    facts = ModelFacts(packaging="modelpack", files=FILES, tensors={FILES[0].path: A, FILES[1].path: B})
    assert index.put("acme/llm", digest, facts)
    assert index.tensors("acme/llm", digest, FILES[0].path) == list(A)
    assert index.tensors("acme/llm", digest, FILES[1].path) == list(B)
    assert index.tensors("acme/llm", digest, FILES[0].path, "lm_head.weight") == [A[1]]
    assert index.tensors("acme/llm", digest, FILES[0].path, "nope") == []
    assert index.tensors("acme/llm", digest, "other.safetensors") == []
    assert index.tensors("acme/other", digest, FILES[0].path) == []

    assert index.put("acme/llm", digest, facts)  # idempotent
    assert index.tensors("acme/llm", digest, FILES[0].path) == list(A)
    assert index.put("acme/llm", digest, ModelFacts(packaging="modelpack", files=FILES, tensors={FILES[1].path: B}))
    assert index.tensors("acme/llm", digest, FILES[0].path) == []

    store.manifests.delete("acme/llm", digest)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM model_tensors")).scalar_one() == 0
