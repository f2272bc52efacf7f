"""Copying what a rule selects to its target: the plan, idempotent step by step.

For a tag: the manifest it names (an index's child manifests first, an image manifest's config
and layers first), then the tag; then the manifests that refer to it (model cards, eval
reports, signatures: the referrers of the subject), each the same way. Every step asks the
target first (``HEAD``) and does nothing when the target has it, so a run that failed midway
(a target that died, a network cut) is resumed by running again: what arrived is skipped and
only the rest is copied and counted. A blob the target holds in another repository this
process copied it to is mounted there rather than sent again.

Deletes (``mirror_deletes``): a deleted tag or manifest on the source is deleted on the target;
one the target does not have is not an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelyard import metrics
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.replication import Counts, DeleteSkipped, RuleRecord
from modelyard.metadata.base import MetadataStore
from modelyard.services.blobs import BlobService
from modelyard.services.runner import Reader

#: The referrers tag schema's tags (``sha256-<hex>``), which a target without the referrers API keeps.
REFERRERS_TAG = re.compile(r"^[a-z0-9]+-[a-f0-9]{32,}$")
#: Destination blobs remembered for mounts (digest -> a target repository that has it).
MOUNT_MEMORY = 10_000
#: How deep an index tree, or a chain of referrers, is followed to decide what a rule covers.
MAX_DEPTH = 8


class ReplicationFailed(Exception):
    """A step could not be done (the source lacks what it names, the target refused)."""


class TargetClient(Protocol):
    """A target registry (``egress/oci_push.py``). Anything but "not there" is raised."""

    async def has_blob(self, repository: str, digest: str) -> bool: ...

    async def push_blob(
        self, repository: str, digest: str, size: int, chunks: Callable[[int], AsyncIterator[bytes]], *,
        mount_from: str | None,
    ) -> bool: ...  # fmt: skip

    async def manifest_digest(self, repository: str, reference: str) -> str | None: ...

    async def put_manifest(
        self, repository: str, reference: str, media_type: str, content: bytes, subject: str | None = None
    ) -> None: ...

    async def delete_manifest(self, repository: str, reference: str) -> bool: ...

    async def tags(self, repository: str) -> list[str]: ...

    async def aclose(self) -> None: ...


@dataclass
class Run:
    """One execution in progress: the rule, its target, and what was done."""

    rule: RuleRecord
    client: TargetClient
    counts: Counts = field(default_factory=Counts)
    visited: set[tuple[str, str]] = field(default_factory=set)
    blobs_done: set[tuple[str, str]] = field(default_factory=set)
    #: Steps deliberately not done, and why (kept with the execution's scope).
    notes: list[str] = field(default_factory=list)


def blob_digests(document: dict[str, Any]) -> list[str]:
    """The config and layers of an image manifest, in order (config first: it is small)."""
    found = []
    config = document.get("config")
    if isinstance(config, dict) and isinstance(config.get("digest"), str):
        found.append(config["digest"])
    for layer in document.get("layers") or []:
        if isinstance(layer, dict) and isinstance(layer.get("digest"), str) and not layer.get("urls"):
            found.append(layer["digest"])
    return found


def child_digests(document: dict[str, Any]) -> list[str]:
    return [m["digest"] for m in document.get("manifests") or [] if isinstance(m, dict) and "digest" in m]


class Replicator:
    def __init__(self, metadata: MetadataStore, blobs: BlobService, read: Reader) -> None:
        self._meta = metadata
        self._blobs = blobs
        self._read = read
        self._placed: dict[tuple[int, str], str] = {}  # (target id, digest) -> target repository

    # -- what a rule selects ------------------------------------------------------------------

    def selection(self, rule: RuleRecord) -> dict[str, list[str]]:
        """Every repository the rule selects on the source now, with its selected tags."""
        chosen = {}
        for repository in self._meta.repositories.list_names(None, None):
            if rule.wants_repository(repository):
                tags = self._meta.tags.list_names(repository, None, None)
                chosen[repository] = [tag for tag in tags if rule.wants_tag(tag)]
        return chosen

    async def sync(self, run: Run) -> None:
        """A full pass (scheduled and manual runs): every selected tag, stopping at the first
        failure (a target that is away fails every step; the next run resumes). With
        ``mirror_deletes``, a tag the rule selects that the target has and the source no longer
        has is deleted there (a referrers tag ``sha256-…`` is the target's own bookkeeping)."""
        selected = await self._read(self.selection, run.rule)
        for repository, tags in selected.items():
            for tag in tags:
                await self.copy_tag(run, repository, tag)
        if not run.rule.mirror_deletes:
            return
        for repository, tags in selected.items():
            for tag in await run.client.tags(run.rule.destination(repository)):
                if tag not in tags and run.rule.wants_tag(tag) and not REFERRERS_TAG.match(tag):
                    await self.delete(run, repository, tag)

    # -- copying ------------------------------------------------------------------------------

    async def copy_tag(self, run: Run, repository: str, tag: str) -> None:
        record = await self._read(self._meta.manifests.resolve_tag, repository, tag)
        if record is None:
            return  # deleted since: a mirrored delete (if the rule wants one) is its own task
        destination = run.rule.destination(repository)
        await self.copy_manifest(run, repository, record.digest)
        if await run.client.manifest_digest(destination, tag) != record.digest:
            await run.client.put_manifest(destination, tag, record.media_type, record.content)

    def on_source(self, repository: str, reference: str) -> bool:
        """Whether the source has the tag or the manifest (by digest) now."""
        if is_digest(reference):
            return self._meta.manifests.get(repository, reference) is not None
        return self._meta.manifests.resolve_tag(repository, reference) is not None

    def is_referrer(self, repository: str, digest: str) -> bool:
        record = self._meta.manifests.get(repository, digest)
        return record is not None and record.subject is not None

    async def copy_referrer(self, run: Run, repository: str, digest: str) -> None:
        """A manifest pushed by digest alone: copied when it refers to a subject (a signature,
        a model card added later), subject first; other untagged manifests come with their tag.

        Only when the rule covers the subject: reachable from a tag the rule selects (the tag's
        manifest, an index's child, or the subject of such a referrer) as the source stands now.
        Otherwise a signature of a dev build would ship the build to a target whose rule says
        ``release-*``; if such a tag is pushed later, its copy brings the referrers along."""
        record = await self._read(self._meta.manifests.get, repository, digest)
        if record is None or record.subject is None:
            return
        if not await self._read(self.covers, run.rule, repository, record.subject):
            run.notes.append(f"skipped referrer {repository}@{digest}: its subject is under no tag the rule selects")
            return
        subject = await self._read(self._meta.manifests.get, repository, record.subject)
        await self.copy_manifest(run, repository, record.subject if subject is not None else digest)

    def covers(self, rule: RuleRecord, repository: str, digest: str) -> bool:
        """Whether ``digest`` is reachable in ``repository`` from a tag ``rule`` selects: named by
        such a tag, a child of an index so named (any depth), or -- following subjects up a chain
        of referrers (a signature of a card) -- refers to one of those."""
        chain = [digest]
        record = self._meta.manifests.get(repository, digest)
        while record is not None and record.subject is not None and len(chain) < MAX_DEPTH:
            chain.append(record.subject)
            record = self._meta.manifests.get(repository, record.subject)
        wanted = set(chain)
        for tag in self._meta.tags.list_names(repository, None, None):
            if not rule.wants_tag(tag):
                continue
            tagged = self._meta.manifests.resolve_tag(repository, tag)
            if tagged is not None and wanted & self._reachable(repository, tagged.digest, tagged.content):
                return True
        return False

    def _reachable(self, repository: str, digest: str, content: bytes) -> set[str]:
        """A manifest's digest and its children's, down an index's tree (bounded depth)."""
        found = {digest}
        level = [content]
        for _ in range(MAX_DEPTH):
            children = []
            for body in level:
                try:
                    document = json.loads(body)
                except ValueError:
                    continue
                for child in child_digests(document) if isinstance(document, dict) else []:
                    if child not in found:
                        found.add(child)
                        record = self._meta.manifests.get(repository, child)
                        if record is not None:
                            children.append(record.content)
            if not children:
                break
            level = children
        return found

    async def copy_manifest(self, run: Run, repository: str, digest: str) -> None:
        if (repository, digest) in run.visited:
            return
        run.visited.add((repository, digest))
        record = await self._read(self._meta.manifests.get, repository, digest)
        if record is None:
            raise ReplicationFailed(f"manifest {digest} is not in {repository} any more")
        destination = run.rule.destination(repository)
        if await run.client.manifest_digest(destination, digest) == digest:
            run.counts.manifests_skipped += 1
        else:
            document = json.loads(record.content)
            for child in child_digests(document):
                await self.copy_manifest(run, repository, child)
            for blob in blob_digests(document):
                await self.copy_blob(run, repository, blob)
            await run.client.put_manifest(destination, digest, record.media_type, record.content, record.subject)
            run.counts.manifests_copied += 1
        for referrer in await self._read(self._meta.manifests.referrers, repository, digest, None):
            await self.copy_manifest(run, repository, referrer.digest)

    async def copy_blob(self, run: Run, repository: str, digest: str) -> None:
        destination = run.rule.destination(repository)
        if (destination, digest) in run.blobs_done:
            return
        size = await self._read(self._meta.blobs.linked_size, repository, digest)
        if size is None:
            raise ReplicationFailed(f"blob {digest} is not in {repository}")
        if await run.client.has_blob(destination, digest):
            run.counts.blobs_skipped += 1
        else:
            key = (run.rule.target_id, digest)
            elsewhere = self._placed.get(key)
            parsed = Digest.parse(digest)

            def chunks(start: int) -> AsyncIterator[bytes]:  # from ``start`` on: an upload resumed
                return self._blobs.stream(parsed, start, size)

            mount_from = elsewhere if elsewhere != destination else None
            if await run.client.push_blob(destination, digest, size, chunks, mount_from=mount_from):
                run.counts.blobs_copied += 1
                run.counts.bytes_copied += size
                metrics.REPLICATION_BYTES.inc(size)
            else:
                run.counts.blobs_mounted += 1
        run.blobs_done.add((destination, digest))
        if len(self._placed) >= MOUNT_MEMORY:
            self._placed.clear()
        self._placed[(run.rule.target_id, digest)] = destination

    async def delete(self, run: Run, repository: str, reference: str) -> None:
        """Mirror a delete: a tag (if the rule selects it) or a manifest by digest.

        The source is asked again first, at the moment of the delete: a tag that is there again
        (re-pushed after the delete, while this task waited for a retry or its event came late,
        or pushed during a long full pass) or a manifest that is there again is not deleted on
        the target -- its copy is, or was, another task."""
        if not is_digest(reference) and not run.rule.wants_tag(reference):
            return
        if await self._read(self.on_source, repository, reference):
            run.notes.append(f"skipped delete of {repository}:{reference}: the source has it again")
            return
        try:
            deleted = await run.client.delete_manifest(run.rule.destination(repository), reference)
        except DeleteSkipped as skipped:
            run.notes.append(str(skipped))
            return
        if deleted:
            run.counts.tags_deleted += 1
