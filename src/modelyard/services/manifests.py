"""Pushing, pulling and deleting manifests, with the checks that keep a repository whole."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard.domain import mediatypes
from modelyard.domain.aliases import TagChange
from modelyard.domain.digest import Digest, is_digest
from modelyard.domain.errors import ErrorCode, ManifestReferenced, ManifestTooLarge, RegistryError, TagImmutable
from modelyard.domain.events import Actor, Event, ManifestDeleted, ManifestPushed, TagDeleted, TagMoved
from modelyard.domain.manifest import ParsedManifest, parse_manifest
from modelyard.domain.records import (
    ImmutableTagError,
    ManifestRecord,
    MissingBlobsError,
    MissingManifestsError,
    NewManifest,
    ReferencedManifestError,
)
from modelyard.domain.reference import is_valid_tag, validate_tag
from modelyard.metadata.base import MetadataStore
from modelyard.policy.authorizer import Permission
from modelyard.policy.immutability import tag_is_immutable
from modelyard.services.audit import log_events
from modelyard.services.lifecycle.quotas import QuotaService
from modelyard.services.repositories import RepositoryService
from modelyard.services.runner import BlockingRunner

TagLimits = dict[Permission, tuple[str, ...] | None]


class TagRules(Protocol):
    """What a push of a tag must pass beyond immutability (``AliasService.check_push``)."""

    def check_push(
        self, repository: str, tag: str, digest: str, *, subject: str | None, limits: TagLimits | None
    ) -> None: ...

    def check_delete(self, repository: str, tags: Sequence[str], *, subject: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: str
    manifest: ParsedManifest


def _unknown(repository: str, reference: str) -> RegistryError:
    return RegistryError(
        ErrorCode.MANIFEST_UNKNOWN,
        f"manifest {reference} is not in repository {repository}",
        detail={"name": repository, "reference": reference},
    )


def missing_references(repository: str, blobs: list[str], manifests: list[str]) -> RegistryError:
    names = blobs + manifests
    return RegistryError(
        ErrorCode.MANIFEST_BLOB_UNKNOWN,
        f"the manifest refers to {len(names)} blob(s) or manifest(s) not in repository "
        f"{repository}: push them first ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})",
        detail={"blobs": blobs, "manifests": manifests},
    )


def accepts(accept: str | None, media_type: str) -> bool:
    """Whether an ``Accept`` header admits ``media_type`` (no header admits everything)."""
    if not accept:
        return True
    for item in accept.split(","):
        wanted = mediatypes.strip_parameters(item)
        if wanted in (media_type, "*/*", "application/*", ""):
            return True
    return False


class ManifestService:
    def __init__(
        self,
        metadata: MetadataStore,
        runner: BlockingRunner,
        repositories: RepositoryService,
        *,
        max_bytes: int,
        after_put: Callable[[str, str, ParsedManifest], Awaitable[object]] | None = None,
        tag_rules: TagRules | None = None,
        quotas: QuotaService | None = None,
    ) -> None:
        self._meta = metadata
        self._repositories = repositories
        self._run = runner.run
        self.max_bytes = max_bytes
        # Called with (repository, digest, manifest) once a put is stored: the model index
        # (services/models/service.py says why after the transaction, not in it). Never raises.
        self._after_put = after_put
        # The alias rules (services/aliases.py) a push of a mutable tag must pass.
        self._tag_rules = tag_rules
        # Quotas (services/lifecycle/quotas.py): a repository over its quota takes no new manifest.
        self._quotas = quotas

    def get(self, repository: str, reference: str) -> ManifestRecord:
        """Resolve a tag or digest to the stored manifest, or raise ``MANIFEST_UNKNOWN``.

        A reference that is not a valid tag is ``MANIFEST_UNKNOWN`` too, not ``TAG_INVALID``:
        nothing can ever be stored under it, and the conformance suite expects a read of it to
        answer 404 (a malformed *digest* stays ``DIGEST_INVALID``). Writes keep ``TAG_INVALID``.
        """
        if is_digest(reference):
            record = self._meta.manifests.get(repository, str(Digest.parse(reference)))
        elif not is_valid_tag(reference):
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN,
                f"no manifest {reference[:150]!r} in repository {repository}: it is neither a digest nor a "
                "valid tag, so nothing can be stored under it",
                detail={"name": repository, "reference": reference[:150]},
            )
        else:
            record = self._meta.manifests.resolve_tag(repository, reference)
        if record is None:
            raise _unknown(repository, reference)
        return record

    def negotiate(
        self, repository: str, record: ManifestRecord, accept: str | None, *, by_digest: bool = False
    ) -> ManifestRecord:
        """Apply the client's ``Accept`` header.

        A client that cannot take an index (an old Docker asking only for schema-2) gets the
        ``linux/amd64`` image of it when it asked by tag, as CNCF Distribution does; a digest
        names exact bytes, so asked ``by_digest`` nothing else is ever answered. Otherwise a
        manifest of a type the client did not accept is answered ``MANIFEST_UNKNOWN``, naming
        the type it is.
        """
        if accepts(accept, record.media_type):
            return record
        if record.media_type in mediatypes.INDEXES and not by_digest:
            try:
                children = parse_manifest(record.content, record.media_type).children
            except RegistryError:  # stored before validation was strict: no substitute, then
                children = ()
            for child in children:
                platform = child.platform
                is_default = platform is not None and platform.os == "linux" and platform.architecture == "amd64"
                if is_default and accepts(accept, child.media_type):
                    found = self._meta.manifests.get(repository, child.digest)
                    if found is not None:
                        return found
        raise RegistryError(
            ErrorCode.MANIFEST_UNKNOWN,
            f"the manifest is of type {record.media_type}, which the request's Accept header does not "
            "include; add it to Accept",
            detail={"mediaType": record.media_type},
        )

    async def put(
        self,
        repository: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        *,
        actor: Actor,
        pushed_by: str | None = None,
        may_move_tags: bool = True,
        tag_limits: TagLimits | None = None,
        verify_references: bool = True,
    ) -> PushedManifest:
        """Validate and store a manifest, tagging it when ``reference`` is a tag.

        A tag that exists is moved only if it is mutable and the caller may move tags. A mutable
        tag is an alias: its protections and promotion gates apply (``tag_rules``), and the
        tags the caller's token may write (``tag_limits``, from binding conditions). The push
        records :class:`ManifestPushed`, and :class:`TagMoved` when the tag pointed elsewhere,
        in the transaction that stores it (with the move in the tag's history): a refused put
        records nothing.

        ``verify_references=False`` (the pull-through cache only) stores a manifest whose blobs
        and child manifests are not here yet: they are upstream and come on their first pull.
        """
        if len(body) > self.max_bytes:
            raise ManifestTooLarge(len(body), self.max_bytes)
        parsed = parse_manifest(body, content_type)
        tag: str | None = None
        if is_digest(reference):
            wanted = Digest.parse(reference)
            digest = str(Digest.of(body, wanted.algorithm))
            if digest != str(wanted):
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID,
                    f"the manifest's content has digest {digest}, not {reference}",
                    detail={"expected": reference, "actual": digest},
                )
        else:
            tag = validate_tag(reference)
            digest = str(Digest.of(body))
        self._repositories.check_push_allowed(repository)  # NAME_UNKNOWN before "push the blobs first"
        if verify_references:
            self._check_references(repository, parsed)
        if self._quotas is not None:
            await self._quotas.check(repository, len(body), stage="manifest", actor=actor)
        repo = await self._repositories.require_for_push(repository, pushed_by, actor=actor)
        record = NewManifest(
            digest=digest,
            media_type=parsed.media_type,
            content=body,
            artifact_type=parsed.referrer_artifact_type(),
            subject=parsed.subject.digest if parsed.subject else None,
            annotations=parsed.annotations,
            blob_refs=parsed.required_blobs(),
            manifest_refs=parsed.required_manifests(),
        )
        immutable = tag is not None and tag_is_immutable(repo, tag)
        if tag is not None and self._tag_rules is not None:
            await self._run(self._tag_rules.check_push, repository, tag, digest, subject=pushed_by, limits=tag_limits)
        pushed = ManifestPushed(
            actor=actor, repository=repository, reference=reference, digest=digest, media_type=parsed.media_type,
            tag=tag,
        )  # fmt: skip
        written: list[Event] = []

        def events(previous: str | None) -> Sequence[Event]:
            """Called inside the transaction, with the digest the tag pointed to before."""
            written[:] = [pushed]
            if tag is not None and previous is not None and previous != digest:
                written.append(
                    TagMoved(actor=actor, repository=repository, tag=tag, from_digest=previous, to_digest=digest)
                )
            return written

        try:
            await self._run(
                self._meta.manifests.put,
                repository,
                record,
                tag,
                tag_immutable=immutable or not may_move_tags,
                events=events,
                change=TagChange("push", actor.subject),
                verify_references=verify_references,
            )
        except MissingBlobsError as exc:
            raise missing_references(repository, exc.digests, []) from None
        except MissingManifestsError as exc:
            raise missing_references(repository, [], exc.digests) from None
        except ImmutableTagError as exc:
            if immutable:
                raise TagImmutable(repository, exc.tag, exc.current_digest, "moved") from None
            raise RegistryError(
                ErrorCode.DENIED,
                f"tag {exc.tag} of {repository} exists (it points to {exc.current_digest}) and you may push "
                "new tags but not move existing ones; push under a new tag or ask for the writer role",
                detail={"reason": "TAG_MOVE_DENIED", "tag": exc.tag, "digest": exc.current_digest},
            ) from None
        log_events(written)
        if self._after_put is not None:
            await self._after_put(repository, digest, parsed)
        return PushedManifest(digest, parsed)

    def _check_references(self, repository: str, parsed: ParsedManifest) -> None:
        missing_blobs = self._meta.blobs.missing(repository, parsed.required_blobs())
        missing_manifests = self._meta.manifests.missing(repository, parsed.required_manifests())
        if missing_blobs or missing_manifests:
            raise missing_references(repository, missing_blobs, missing_manifests)

    async def delete(self, repository: str, reference: str, *, actor: Actor, deleted_by: str | None = None) -> None:
        """Delete a tag (only the tag) or a manifest by digest (and every tag on it), recording
        :class:`TagDeleted` or :class:`ManifestDeleted` in the same transaction.

        Neither an immutable tag nor a manifest an immutable tag names can be deleted, nor a
        manifest that an index of the repository lists (:class:`~modelyard.domain.errors.ManifestReferenced`),
        nor a protected alias by someone it does not name (``deleted_by``: the token's subject,
        ``None`` with auth off).
        """
        repo = self._meta.repositories.get(repository)
        if is_digest(reference):
            digest = str(Digest.parse(reference))
            pointing = self._meta.tags.pointing_to(repository, digest) if repo is not None else []
            # The tags it had go with the event (as retention's do): replication mirrors the
            # delete only to a rule that selects one of them.
            event: Event = ManifestDeleted(actor=actor, repository=repository, digest=digest, tags=tuple(pointing))
            if repo is not None:
                for tag in pointing:
                    if tag_is_immutable(repo, tag):
                        raise TagImmutable(repository, tag, digest, "left without its manifest")
                if self._tag_rules is not None and pointing:
                    await self._run(self._tag_rules.check_delete, repository, pointing, subject=deleted_by)
            try:
                found = await self._run(
                    self._meta.manifests.delete, repository, digest, events=[event],
                    change=TagChange("delete", actor.subject),
                )  # fmt: skip
            except ReferencedManifestError as exc:
                raise ManifestReferenced(repository, digest, exc.indexes) from None
        else:
            tag = validate_tag(reference)
            event = TagDeleted(actor=actor, repository=repository, tag=tag)
            if repo is not None and tag_is_immutable(repo, tag):
                current = self._meta.manifests.resolve_tag(repository, tag)
                if current is not None:
                    raise TagImmutable(repository, tag, current.digest, "deleted")
            if repo is not None and self._tag_rules is not None:
                await self._run(self._tag_rules.check_delete, repository, [tag], subject=deleted_by)
            found = await self._run(
                self._meta.tags.delete, repository, tag, events=[event], change=TagChange("delete", actor.subject)
            )
        if not found:
            raise _unknown(repository, reference)
        log_events([event])
