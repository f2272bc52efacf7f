"""The protocol of the model index: what ``services/models`` stores of each version and reads back
(the records are in ``domain/models.py``; the SQL implementation is ``sql_models.py``).

The index is derived data. :meth:`ModelIndex.put` replaces a version's row and files in one
transaction and is idempotent (the same facts written twice leave the same rows), so the
service may write it after the manifest's own transaction, again on a retried push, or when a
read finds a manifest that was never indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelyard.domain.models import ModelFacts, ModelFile, ModelQuery, ModelVersionRecord, TensorEntry


class ModelIndex(Protocol):
    def put(self, repository: str, digest: str, facts: ModelFacts) -> bool:
        """Store ``facts`` (and its files) for manifest ``digest`` of ``repository``, replacing
        what was stored; False (and nothing written) if the manifest is not (or no longer) there."""

    def get(self, repository: str, digest: str, *, with_files: bool = False) -> ModelVersionRecord | None: ...

    def summaries(self, repository: str, digests: Sequence[str]) -> dict[str, ModelVersionRecord]:
        """The stored versions among ``digests`` (without files), by digest."""

    def file(self, repository: str, digest: str, path: str) -> ModelFile | None: ...

    def digests_starting(self, repository: str, prefix: str, limit: int = 2) -> list[str]:
        """Digests of indexed versions of ``repository`` that start with ``prefix`` (at most
        ``limit``): how a Hub commit hash, a digest's first 40 hex digits, finds its version."""

    def tensors(self, repository: str, digest: str, path: str, name: str | None = None) -> list[TensorEntry]:
        """The tensor index of one safetensors file of a version, in file order (only the tensor
        ``name`` when given); empty when the file has none indexed."""

    def search(self, query: ModelQuery, limit: int, before: int | None) -> list[ModelVersionRecord]:
        """Versions matching ``query``, newest first, with ``id`` below ``before`` (the cursor)."""

    def unindexed(self, limit: int) -> list[tuple[str, str]]:
        """``(repository, digest)`` of manifests with no index row yet (oldest first)."""
