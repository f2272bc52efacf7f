"""The protocol of the lineage index (``sql_lineage.py`` implements it on ``manifest_bases`` and
``manifests.subject_digest``): the base each manifest declares, written on manifest PUT, and
the two walks lineage needs, both indexed lookups by a batch of ``(repository, digest)`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard.domain.lineage import BaseRef, LineageNode, Relation

Key = tuple[str, str]  # (repository, manifest digest)


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A manifest as the lineage walk reads it: the node, and the parents it declares (its base,
    its subject), which may or may not exist."""

    node: LineageNode
    parents: tuple[tuple[Key, Relation], ...]


class LineageIndex(Protocol):
    def put_base(self, repository: str, digest: str, base: BaseRef | None) -> bool:
        """Record (or clear, for ``None``) the base manifest ``digest`` of ``repository`` declares;
        idempotent; False (nothing written) if the manifest is not (or no longer) there."""

    def nodes(self, keys: Sequence[Key]) -> dict[Key, StoredNode]:
        """The stored manifests among ``keys`` with their current tags and declared parents."""

    def children(self, keys: Sequence[Key], limit: int) -> list[tuple[Key, Relation, Key]]:
        """``(parent, relation, child)`` for manifests that declare one of ``keys`` as their base
        or subject; at most ``limit`` rows."""
