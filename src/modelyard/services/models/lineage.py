"""Lineage of a version: the versions it derives from (ancestors) and those derived from it or
attached to it (descendants), across repositories, as far as the caller may read.

Edges come from what clients write (``domain/lineage.py``): the OCI base annotations
(``modelyard push --base``, image builders) and ``subject`` links (referrers). The base a
manifest declares is indexed when the manifest is pushed (:meth:`LineageService.record`, after
the manifest's transaction like the model index: derived data, recomputable from the manifest),
subjects are indexed by the manifest store already; a walk is one indexed query per level.

Visibility: the caller passes ``visible(repository)``, awaited (it may read permissions). A
node in a repository it may not read is not in the answer at all -- not as a redacted node, and
the walk does not pass through it, so nothing beyond it (whose path would betray it) shows
either. A visible base that is gone (deleted, or never pushed here) is a node with ``present``
false: the edge is what the child's
own manifest says, which the caller may read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.errors import RegistryError
from modelyard.domain.lineage import Lineage, LineageEdge, LineageNode, base_of
from modelyard.domain.manifest import ParsedManifest
from modelyard.domain.reference import is_valid_tag
from modelyard.metadata.base import MetadataStore
from modelyard.metadata.lineage_index import Key, LineageIndex, StoredNode
from modelyard.services.models.service import ModelService, not_found
from modelyard.services.runner import BlockingRunner

#: Whether the caller may read a repository (awaited: it may have to read the caller's permissions).
Visible = Callable[[str], Awaitable[bool]]

log = logging.getLogger("modelyard.lineage")

Hook = Callable[[str, str, ParsedManifest], Awaitable[object]]


def chained(*hooks: Hook) -> Hook:
    """One ``after_put`` hook of :class:`ManifestService` running ``hooks`` in order."""

    async def run(repository: str, digest: str, parsed: ParsedManifest) -> None:
        for hook in hooks:
            await hook(repository, digest, parsed)

    return run


def resolve(metadata: MetadataStore, repository: str, reference: str) -> str:
    """The manifest digest ``reference`` (a tag or a digest) names in ``repository``, or the
    model API's not-found error."""
    if is_digest(reference):
        try:
            digest = str(Digest.parse(reference))
        except RegistryError:
            raise not_found(repository, reference) from None
        if metadata.manifests.get(repository, digest) is None:
            raise not_found(repository, reference)
        return digest
    if not is_valid_tag(reference):
        raise not_found(repository, reference)
    record = metadata.manifests.resolve_tag(repository, reference)
    if record is None:
        raise not_found(repository, reference)
    return record.digest


class LineageService:
    def __init__(
        self,
        metadata: MetadataStore,
        index: LineageIndex,
        models: ModelService,
        runner: BlockingRunner,
        *,
        max_depth: int = 16,
        max_nodes: int = 200,
    ) -> None:
        self._meta = metadata
        self._index = index
        self._models = models
        self._run = runner.run
        self.max_depth = max_depth
        self.max_nodes = max_nodes

    async def record(self, repository: str, digest: str, parsed: ParsedManifest) -> None:
        """Index the base a pushed manifest declares. Never raises: the push has succeeded (a
        failure is logged; the manifest then shows no base until pushed again)."""
        base = base_of(repository, parsed.annotations)
        if base is None:
            return  # nothing to index, and no row can exist: a digest's annotations never change
        try:
            await self._run(self._index.put_base, repository, digest, base)
        except Exception:
            log.exception("indexing the base of %s@%s failed", repository, digest)

    async def lineage(self, repository: str, reference: str, visible: Visible) -> Lineage:
        """The lineage of ``repository:reference`` (the caller may read ``repository``)."""
        digest = await self._run(resolve, self._meta, repository, reference)
        stored = await self._run(self._index.nodes, [(repository, digest)])
        root = stored.get((repository, digest))
        if root is None:  # deleted between the two reads
            raise not_found(repository, reference)
        seen: set[Key] = {root.node.key}
        edges: list[LineageEdge] = []
        ancestors, up_cut = await self._ancestors(root, visible, seen, edges)
        descendants, down_cut = await self._descendants(root.node.key, visible, seen, edges)
        nodes = await self._with_models([root.node, *ancestors, *descendants])
        return Lineage(
            root=nodes[0],
            ancestors=tuple(nodes[1 : 1 + len(ancestors)]),
            descendants=tuple(nodes[1 + len(ancestors) :]),
            edges=tuple(edges),
            truncated=up_cut or down_cut,
        )

    async def _ancestors(
        self, root: StoredNode, visible: Visible, seen: set[Key], edges: list[LineageEdge]
    ) -> tuple[list[LineageNode], bool]:
        found: list[LineageNode] = []
        frontier = [root]
        for _ in range(self.max_depth):
            wanted: list[Key] = []
            for child in frontier:
                for parent, relation in child.parents:
                    if not await visible(parent[0]):
                        continue
                    edges.append(LineageEdge(child.node.key, parent, relation))
                    if parent not in seen:
                        seen.add(parent)
                        wanted.append(parent)
            if not wanted:
                return found, False
            if len(found) + len(wanted) > self.max_nodes:
                return found, True
            stored = await self._run(self._index.nodes, wanted)
            frontier = []
            for key in wanted:
                if key in stored:
                    found.append(stored[key].node)
                    frontier.append(stored[key])
                else:
                    found.append(LineageNode(repository=key[0], digest=key[1], present=False))
        return found, bool(frontier and any(node.parents for node in frontier))

    async def _descendants(
        self, root: Key, visible: Visible, seen: set[Key], edges: list[LineageEdge]
    ) -> tuple[list[LineageNode], bool]:
        found: list[LineageNode] = []
        frontier = [root]
        for _ in range(self.max_depth):
            rows = await self._run(self._index.children, frontier, self.max_nodes + 1)
            wanted: list[Key] = []
            for parent, relation, child in rows:
                if not await visible(child[0]):
                    continue
                edges.append(LineageEdge(child, parent, relation))
                if child not in seen:
                    seen.add(child)
                    wanted.append(child)
            if not wanted:
                return found, False
            if len(found) + len(wanted) > self.max_nodes:
                return found, True
            stored = await self._run(self._index.nodes, wanted)
            frontier = [key for key in wanted if key in stored]
            found.extend(stored[key].node for key in frontier)
        # The depth bound was reached: truncated only if something lies beyond it.
        return found, bool(frontier) and bool(await self._run(self._index.children, frontier, 1))

    async def _with_models(self, nodes: list[LineageNode]) -> list[LineageNode]:
        """``nodes`` with what the model index knows of each present one."""
        by_repository: dict[str, list[str]] = {}
        for node in nodes:
            if node.present:
                by_repository.setdefault(node.repository, []).append(node.digest)
        facts = {}
        for repository, digests in by_repository.items():
            records = await self._run(self._models.summaries, repository, digests)
            facts.update({(repository, d): r.facts for d, r in records.items()})
        return [replace(node, model=facts.get(node.key)) for node in nodes]
