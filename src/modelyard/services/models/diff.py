"""The difference between two versions, possibly of two repositories: files added, removed and
changed (by path, with sizes), the model facts and manifest annotations that changed, and the
bytes the two share -- read from the model index, never from the blobs.

A file is the same in both versions when its bytes are in the same place: the same layer (a
raw layer's digest is the file's sha256) at the same offset of it (a tar member). Two tar
layers with different digests may hold a member with equal bytes; the index cannot tell, so
such a file counts as changed.
"""

from __future__ import annotations

from modelyard.domain.lineage import FieldChange, FileChange, VersionDiff
from modelyard.domain.models import ModelFacts, ModelFile, ModelVersionRecord
from modelyard.metadata.base import MetadataStore
from modelyard.services.models.service import ModelService
from modelyard.services.runner import BlockingRunner

# The facts compared, in the order a person reads them.
FIELDS = (
    "name", "packaging", "format", "architecture", "parameters", "precision", "quantization", "quant_bits",
    "license", "context_length", "status", "total_size", "file_count",
)  # fmt: skip
# Annotations every push rewrites: a difference in them says nothing.
_IGNORED_ANNOTATIONS = frozenset({"org.opencontainers.image.created"})


def _where(file: ModelFile) -> tuple[str, int]:
    return (file.layer_digest, file.member_offset or 0)


def _facts_changes(a: ModelFacts, b: ModelFacts) -> list[FieldChange]:
    return [
        FieldChange(name, getattr(a, name), getattr(b, name)) for name in FIELDS if getattr(a, name) != getattr(b, name)
    ]


def _annotation_changes(a: dict[str, str] | None, b: dict[str, str] | None) -> list[FieldChange]:
    a, b = a or {}, b or {}
    keys = sorted((set(a) | set(b)) - _IGNORED_ANNOTATIONS)
    return [FieldChange(key, a.get(key), b.get(key)) for key in keys if a.get(key) != b.get(key)]


def compare(
    a: ModelVersionRecord,
    b: ModelVersionRecord,
    a_notes: dict[str, str] | None = None,
    b_notes: dict[str, str] | None = None,
) -> VersionDiff:
    """The diff of two versions read with their files (pure: no I/O)."""
    old = {f.path: f for f in a.facts.files}
    new = {f.path: f for f in b.facts.files}
    added = tuple((p, new[p].size, new[p].layer_digest) for p in sorted(new.keys() - old.keys()))
    removed = tuple((p, old[p].size, old[p].layer_digest) for p in sorted(old.keys() - new.keys()))
    changed = tuple(
        FileChange(p, old[p].size, new[p].size, old[p].layer_digest, new[p].layer_digest)
        for p in sorted(old.keys() & new.keys())
        if _where(old[p]) != _where(new[p])
    )
    in_a = {_where(f): f.size for f in a.facts.files}
    in_b = {_where(f): f.size for f in b.facts.files}
    return VersionDiff(
        a_repository=a.repository,
        a_digest=a.digest,
        b_repository=b.repository,
        b_digest=b.digest,
        added=added,
        removed=removed,
        changed=changed,
        unchanged=len(old.keys() & new.keys()) - len(changed),
        metadata=tuple(_facts_changes(a.facts, b.facts)),
        annotations=tuple(_annotation_changes(a_notes, b_notes)),
        a_size=sum(in_a.values()),
        b_size=sum(in_b.values()),
        shared_bytes=sum(size for where, size in in_b.items() if where in in_a),
        changed_bytes=sum(size for where, size in in_b.items() if where not in in_a),
    )


class DiffService:
    def __init__(self, metadata: MetadataStore, models: ModelService, runner: BlockingRunner) -> None:
        self._meta = metadata
        self._models = models
        self._run = runner.run

    async def diff(self, a_repository: str, a_reference: str, b_repository: str, b_reference: str) -> VersionDiff:
        """From ``a_repository:a_reference`` to ``b_repository:b_reference`` (either missing:
        the model API's not-found error). The caller checks read access to both."""
        a = await self._models.version(a_repository, a_reference)
        b = await self._models.version(b_repository, b_reference)
        a_manifest = await self._run(self._meta.manifests.get, a_repository, a.digest)
        b_manifest = await self._run(self._meta.manifests.get, b_repository, b.digest)
        return compare(
            a,
            b,
            a_manifest.annotations if a_manifest is not None else None,
            b_manifest.annotations if b_manifest is not None else None,
        )
